"""Users, roles, permissions and auth on/off against private etcd servers.

Auth changes global state, so every test gets its own server (never the shared one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import aetcd
from aetcd import Permission, RolePermission
from aetcd.testing import EtcdServer
from aetcd.testing.pytest_plugin import EtcdServerFactory

ROOT_PW = "r00t-S3cret-pw"
ALICE_PW = "alice-S3cret-pw"
SECRETS = (ROOT_PW, ALICE_PW)


@pytest.fixture
async def server(etcd_server_factory: EtcdServerFactory) -> EtcdServer:
    return await etcd_server_factory()


@pytest.fixture
async def admin(server: EtcdServer) -> AsyncIterator[aetcd.Client]:
    async with aetcd.Client(server.endpoint) as client:
        yield client


async def _enable_auth(admin: aetcd.Client) -> None:
    """root (with the root role) and alice (read-write on the prefix app/ only)."""
    await admin.user_add("root", ROOT_PW)
    await admin.role_add("root")
    await admin.user_grant_role("root", "root")
    await admin.role_add("app")
    await admin.role_grant_permission("app", "app/", prefix=True)
    await admin.user_add("alice", ALICE_PW)
    await admin.user_grant_role("alice", "app")
    await admin.auth_enable()


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def _assert_error_has_no_secret(exc: BaseException) -> None:
    seen: BaseException | None = exc
    while seen is not None:
        _assert_no_secret(str(seen))
        _assert_no_secret(repr(seen))
        seen = seen.__cause__ or seen.__context__


async def test_users_roles_and_permissions(server: EtcdServer, admin: aetcd.Client) -> None:
    status = await admin.auth_status()
    assert not status.enabled
    await _enable_auth(admin)

    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        after = await root.auth_status()
        assert after.enabled and after.auth_revision > status.auth_revision
        assert sorted(await root.user_list()) == ["alice", "root"]
        assert sorted(await root.role_list()) == ["app", "root"]
        alice_user = await root.user_get("alice")
        assert alice_user.name == "alice" and alice_user.roles == ["app"]
        assert alice_user.header.member_id != 0
        role = await root.role_get("app")
        assert role.name == "app"
        assert role.permissions == [RolePermission(Permission.READWRITE, b"app/", b"app0")]
        token = await root.authenticate("alice", ALICE_PW)
        assert isinstance(token, str) and token

        async with aetcd.Client(server.endpoint, username="alice", password=ALICE_PW) as alice:
            await alice.put("app/x", "1")
            assert (await alice.get("app/x")).first is not None
            with pytest.raises(aetcd.PermissionDeniedError) as denied:
                await alice.put("other", "1")
            assert denied.value.message == "etcdserver: permission denied"
            with pytest.raises(aetcd.PermissionDeniedError):
                await alice.get("other")
            with pytest.raises(aetcd.PermissionDeniedError):
                await alice.user_list()  # administration needs the root role

            # A read-only range, then revoking the read-write one: both take effect
            # (alice's token is refreshed after the auth revision moved on).
            await root.role_grant_permission("app", "ro/", prefix=True, perm=Permission.READ)
            await root.put("ro/k", "v")
            assert (await alice.get("ro/k")).count == 1
            with pytest.raises(aetcd.PermissionDeniedError):
                await alice.put("ro/k", "w")
            await root.role_revoke_permission("app", "app/", prefix=True)
            with pytest.raises(aetcd.PermissionDeniedError):
                await alice.get("app/x")
            assert (await root.role_get("app")).permissions == [
                RolePermission(Permission.READ, b"ro/", b"ro0")
            ]
            with pytest.raises(aetcd.AuthAdminError) as not_granted:
                await root.role_revoke_permission("app", "app/", prefix=True)
            assert not_granted.value.message == "etcdserver: permission is not granted to the role"

            # Other key-range forms.
            await root.role_grant_permission("app", "a", range_end="c", perm="write")
            await root.role_grant_permission("app", "z/", from_key=True, perm=Permission.READ)
            await root.role_grant_permission("app", "single")
            perms = {(p.key, p.range_end): p.perm for p in (await root.role_get("app")).permissions}
            assert perms[(b"a", b"c")] is Permission.WRITE
            assert perms[(b"z/", b"\0")] is Permission.READ
            assert perms[(b"single", b"")] is Permission.READWRITE
            await alice.put("b", "in [a, c)")
            await alice.put("single", "v")

            # Revoking the role from alice removes everything it gave.
            await root.user_revoke_role("alice", "app")
            assert (await root.user_get("alice")).roles == []
            with pytest.raises(aetcd.PermissionDeniedError):
                await alice.get("ro/k")

        # A changed password: the old one stops working, the new one works.
        await root.user_change_password("alice", ALICE_PW + "2")
        with pytest.raises(aetcd.AuthenticationError):
            await root.authenticate("alice", ALICE_PW)
        assert await root.authenticate("alice", ALICE_PW + "2")

        await root.user_delete("alice")
        await root.role_delete("app")
        assert await root.user_list() == ["root"]
        assert await root.role_list() == ["root"]
        with pytest.raises(aetcd.AuthAdminError) as unknown:
            await root.user_get("alice")
        assert unknown.value.message == "etcdserver: user name not found"
        with pytest.raises(aetcd.AuthAdminError) as unknown_role:
            await root.role_get("app")
        assert unknown_role.value.message == "etcdserver: role name not found"

        await root.auth_disable()
    # Without auth, a client without credentials works again.
    assert not (await admin.auth_status()).enabled
    await admin.put("app/after", "v")


async def test_client_with_credentials_without_auth(
    server: EtcdServer, admin: aetcd.Client
) -> None:
    await _enable_auth(admin)
    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        await root.auth_disable()
        assert not (await root.auth_status()).enabled  # its token is gone: refresh must cope
    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        await root.put("k", "v")


async def test_unauthenticated_clients_are_refused(server: EtcdServer, admin: aetcd.Client) -> None:
    await _enable_auth(admin)

    with pytest.raises(aetcd.AuthenticationError) as wrong:
        async with aetcd.Client(server.endpoint, username="alice", password="wrong-pw"):
            pass
    assert wrong.value.message == "etcdserver: authentication failed, invalid user ID or password"
    with pytest.raises(aetcd.AuthenticationError):
        async with aetcd.Client(server.endpoint, username="nobody", password="x"):
            pass

    # No credentials at all: etcd answers "user name is empty", at once (no retries).
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(aetcd.AuthenticationError) as anonymous:
        await admin.get("app/x", timeout=3)
    assert anonymous.value.message == "etcdserver: user name is empty"
    assert loop.time() - start < 1.0, "a refusal that cannot change was retried"
    with pytest.raises(aetcd.AuthenticationError):
        await admin.put("app/x", "v", timeout=1)

    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        await root.auth_disable()


async def test_passwords_never_leak(
    server: EtcdServer, admin: aetcd.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _enable_auth(admin)
    client = aetcd.Client(server.endpoint, username="alice", password=ALICE_PW)
    try:
        for text in (repr(client), str(client), repr(client.settings), str(client.settings)):
            _assert_no_secret(text)
        await client.connect()
        _assert_no_secret(repr(client))
        with pytest.raises(aetcd.PermissionDeniedError) as denied:
            await client.put("outside", "v")
        _assert_error_has_no_secret(denied.value)
    finally:
        await client.close()

    wrong = aetcd.Client(server.endpoint, username="alice", password=ROOT_PW)
    with pytest.raises(aetcd.AuthenticationError) as failed:
        await wrong.connect()
    _assert_error_has_no_secret(failed.value)
    _assert_no_secret(repr(wrong) + repr(wrong.settings))

    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        with pytest.raises(aetcd.AuthenticationError) as auth_error:
            await root.authenticate("alice", ROOT_PW)
        _assert_error_has_no_secret(auth_error.value)
        with pytest.raises(aetcd.AuthAdminError) as exists:
            await root.user_add("alice", ROOT_PW)
        _assert_error_has_no_secret(exists.value)
        with pytest.raises(aetcd.AuthAdminError) as missing:
            await root.user_change_password("nobody", ROOT_PW)
        _assert_error_has_no_secret(missing.value)
        # Local validation errors do not echo a password either.
        for bad in (
            lambda: root.user_add("x", ROOT_PW.encode()),
            lambda: root.authenticate("x", [ROOT_PW]),
        ):  # type: ignore[arg-type]
            with pytest.raises(TypeError) as local:
                await bad()
            _assert_error_has_no_secret(local.value)
        await root.auth_disable()
    _assert_no_secret(caplog.text)


async def test_token_is_refreshed_after_expiry(etcd_server_factory: EtcdServerFactory) -> None:
    server = await etcd_server_factory(extra_args=("--auth-token=simple", "--auth-token-ttl=2"))
    async with aetcd.Client(server.endpoint) as admin:
        await _enable_auth(admin)
    async with aetcd.Client(server.endpoint, username="alice", password=ALICE_PW) as alice:
        await alice.put("app/k", "v1")
        token = alice._t.metadata
        # Idle past the token's TTL: etcd forgets it (its keeper ticks once a
        # second, later on a loaded box: idle again until it has).
        for _ in range(5):
            await asyncio.sleep(4)
            got = await alice.get("app/k")
            assert got.first is not None and got.first.value == b"v1"
            if alice._t.metadata != token:
                break  # a new token was fetched transparently
        assert alice._t.metadata != token
        token = alice._t.metadata
        for value in ("v2", "v3", "v4", "v5", "v6"):
            await asyncio.sleep(4)
            # A write is refreshed and retried too: refused, so not applied before.
            await alice.put("app/k", value)
            if alice._t.metadata != token:
                break
        assert alice._t.metadata != token

    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        assert (await root.get("app/k")).kvs[0].value == value.encode()
        await root.auth_disable()


async def test_token_refresh_stays_within_the_calls_deadline(
    etcd_server_factory: EtcdServerFactory,
) -> None:
    # An expired token is refreshed inside the call, within the call's own
    # deadline: here another task's refresh holds the token lock meanwhile.
    server = await etcd_server_factory(extra_args=("--auth-token=simple", "--auth-token-ttl=1"))
    async with aetcd.Client(server.endpoint) as admin:
        await _enable_auth(admin)
    async with aetcd.Client(server.endpoint, username="alice", password=ALICE_PW) as alice:
        await alice.put("app/k", "v1")
        lock = alice._t.token._lock
        assert lock is not None
        async with lock:  # a refresh in another task that does not finish in time
            # etcd forgets a token idle for its TTL (1 s) on its keeper's next 1 s
            # tick, later on a loaded machine; a call while it lives succeeds (and
            # keeps it alive). So idle, try, and again until the server refuses it.
            for _ in range(10):
                await asyncio.sleep(2.5)
                started = time.monotonic()
                try:
                    await alice.get("app/k", timeout=0.3)
                except aetcd.DeadlineExceededError as exc:
                    if "refreshing" not in str(exc):
                        raise  # late for another reason: that is a failure
                    read_error = exc
                    break
            else:
                pytest.fail("etcd never refused the idle token")
            assert time.monotonic() - started < 0.3 + 0.3
            assert not isinstance(read_error, aetcd.OutcomeUnknownError)
            # The expired token is still the client's: a write needs the refresh too.
            started = time.monotonic()
            with pytest.raises(aetcd.DeadlineExceededError) as late:
                await alice.put("app/k", "v2", timeout=0.3)
            assert time.monotonic() - started < 0.3 + 0.3
            assert not isinstance(late.value, aetcd.OutcomeUnknownError)
        assert "refreshing" in str(late.value) and "not applied" in str(late.value)
        assert (await alice.get("app/k")).kvs[0].value == b"v1"  # refreshed now; v2 never applied
    async with aetcd.Client(server.endpoint, username="root", password=ROOT_PW) as root:
        await root.auth_disable()


async def test_admin_errors_are_typed(server: EtcdServer, admin: aetcd.Client) -> None:
    with pytest.raises(aetcd.AuthAdminError) as no_root:
        await admin.auth_enable()
    assert no_root.value.message == "etcdserver: root user does not exist"
    with pytest.raises(aetcd.AuthAdminError) as not_enabled:
        await admin.authenticate("root", "pw")
    assert not_enabled.value.message == "etcdserver: authentication is not enabled"

    await admin.user_add("root", ROOT_PW)
    with pytest.raises(aetcd.AuthAdminError) as no_root_role:
        await admin.auth_enable()
    assert no_root_role.value.message == "etcdserver: root user does not have root role"
    with pytest.raises(aetcd.AuthAdminError) as taken:
        await admin.user_add("root", ROOT_PW)
    assert taken.value.message == "etcdserver: user name already exists"
    await admin.role_add("r")
    with pytest.raises(aetcd.AuthAdminError) as role_taken:
        await admin.role_add("r")
    assert role_taken.value.message == "etcdserver: role name already exists"
    with pytest.raises(aetcd.AuthAdminError) as no_role:
        await admin.user_grant_role("root", "missing")
    assert no_role.value.message == "etcdserver: role name not found"
    with pytest.raises(aetcd.AuthAdminError) as not_granted:
        await admin.user_revoke_role("root", "r")
    assert not_granted.value.message == "etcdserver: role is not granted to the user"

    # A user without password (TLS common-name auth only).
    await admin.user_add("cn-user", no_password=True)
    assert (await admin.user_get("cn-user")).roles == []
    assert not (await admin.auth_status()).enabled


async def test_bad_input_fails_before_io() -> None:
    client = aetcd.Client("127.0.0.1:1", timeout=30)
    try:
        cases: list[tuple[Any, type[Exception]]] = [
            (lambda: client.user_add("u"), aetcd.InvalidArgumentError),
            (lambda: client.user_add("u", ""), aetcd.InvalidArgumentError),
            (lambda: client.user_add("u", "pw", no_password=True), aetcd.InvalidArgumentError),
            (lambda: client.user_add("u", no_password=1), TypeError),
            (lambda: client.user_add("", "pw"), aetcd.InvalidArgumentError),
            (lambda: client.user_add(b"u", "pw"), TypeError),
            (lambda: client.user_add("u", b"pw"), TypeError),
            (lambda: client.user_get(None), TypeError),
            (lambda: client.user_delete(""), aetcd.InvalidArgumentError),
            (lambda: client.user_change_password("u", ""), aetcd.InvalidArgumentError),
            (lambda: client.user_grant_role("u", ""), aetcd.InvalidArgumentError),
            (lambda: client.user_revoke_role(1, "r"), TypeError),
            (lambda: client.authenticate("u", None), TypeError),
            (lambda: client.role_add(""), aetcd.InvalidArgumentError),
            (lambda: client.role_get(1), TypeError),
            (lambda: client.role_delete(""), aetcd.InvalidArgumentError),
            (lambda: client.role_grant_permission("r", ""), aetcd.EmptyKeyError),
            (lambda: client.role_grant_permission("r", 1), TypeError),
            (lambda: client.role_grant_permission("r", "k", perm=2), TypeError),
            (lambda: client.role_grant_permission("r", "k", perm="admin"), TypeError),
            (
                lambda: client.role_grant_permission("r", "k", prefix=True, from_key=True),
                aetcd.InvalidArgumentError,
            ),
            (
                lambda: client.role_grant_permission("r", "k", prefix=True, range_end="z"),
                aetcd.InvalidArgumentError,
            ),
            (lambda: client.role_grant_permission("r", "k", prefix=1), TypeError),
            (lambda: client.role_revoke_permission("", "k"), aetcd.InvalidArgumentError),
            (lambda: client.role_revoke_permission("r", ""), aetcd.EmptyKeyError),
        ]
        for call, error in cases:
            with pytest.raises(error):
                await call()
        assert client._t.state.value == "unopened"
    finally:
        await client.close()
