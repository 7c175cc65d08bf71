"""The client's password never shows: not in reprs, not in the local variables of
aetcd's stack frames (which error trackers such as Sentry record), and a client
whose constructor raised can still be shown."""

from __future__ import annotations

import argparse
import pickle
from types import TracebackType
from typing import Any

import pytest

import aetcd
from aetcd._cli.app import resolve_settings
from aetcd.testing import EtcdServer
from aetcd.testing.pytest_plugin import EtcdServerFactory

SENTINEL = "s3ntinel-Pa55word"


def _leaks(value: Any) -> bool:
    if isinstance(value, str | bytes):
        return SENTINEL in (value if isinstance(value, str) else value.decode(errors="replace"))
    try:
        return SENTINEL in repr(value)
    except Exception:  # a half-built object: what a tracker would skip too
        return False


def _aetcd_frames(exc: BaseException) -> list[tuple[str, dict[str, Any]]]:
    """(function, locals) of every aetcd frame in the tracebacks of *exc* and its chain."""
    frames = []
    seen: BaseException | None = exc
    while seen is not None:
        tb: TracebackType | None = seen.__traceback__
        while tb is not None:
            if tb.tb_frame.f_globals.get("__name__", "").startswith("aetcd"):
                frames.append((tb.tb_frame.f_code.co_qualname, dict(tb.tb_frame.f_locals)))
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return frames


def _assert_frames_clean(exc: BaseException) -> None:
    frames = _aetcd_frames(exc)
    assert frames, "no aetcd frame in the traceback"
    for name, local_vars in frames:
        for var, value in local_vars.items():
            assert not _leaks(value), f"{name}: local {var!r} shows the password"


def test_secret_hides_its_text() -> None:
    secret = aetcd.Secret(SENTINEL)
    assert repr(secret) == "Secret('***')" and str(secret) == "***"
    assert f"{secret}" == "***" and SENTINEL not in repr([secret, {"pw": secret}])
    assert secret.reveal() == SENTINEL
    assert secret == aetcd.Secret(SENTINEL) and secret != aetcd.Secret("other")
    assert aetcd.Secret(secret) == secret
    assert not aetcd.Secret("")
    with pytest.raises(TypeError) as wrong:
        aetcd.Secret(12345)  # type: ignore[arg-type]
    assert "12345" not in str(wrong.value)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_config_keeps_only_the_wrapper() -> None:
    client = aetcd.Client("127.0.0.1:1", username="u", password=SENTINEL)
    assert isinstance(client.settings.password, aetcd.Secret)
    assert client.settings.password.reveal() == SENTINEL
    for text in (repr(client), str(client), repr(client.settings), str(client.settings)):
        assert SENTINEL not in text
    # A Secret given by the caller is accepted as is.
    wrapped = aetcd.Client("127.0.0.1:1", username="u", password=aetcd.Secret(SENTINEL))
    assert wrapped.settings.password == client.settings.password


def test_repr_of_a_client_whose_constructor_raised() -> None:
    built: list[aetcd.Client] = []

    class Spy(aetcd.Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    with pytest.raises(aetcd.InvalidArgumentError) as info:
        Spy("127.0.0.1:1", password=SENTINEL)  # no username
    assert repr(built[0]) == "<aetcd.Client (not initialised)>"
    assert repr(aetcd.Client.__new__(aetcd.Client)) == "<aetcd.Client (not initialised)>"
    _assert_frames_clean(info.value)
    with pytest.raises(aetcd.InvalidArgumentError) as late:
        Spy("127.0.0.1:1", username="u", password=SENTINEL, max_txn_ops=0)
    assert SENTINEL not in repr(built[1])
    _assert_frames_clean(late.value)


@pytest.fixture
async def auth_server(etcd_server_factory: EtcdServerFactory) -> EtcdServer:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as admin:
        await admin.user_add("root", "r00t-pw")
        await admin.role_add("root")
        await admin.user_grant_role("root", "root")
        await admin.auth_enable()
    return server


async def test_failed_authentication_leaves_no_password_in_frames(auth_server: EtcdServer) -> None:
    client = aetcd.Client(auth_server.endpoint, username="root", password=SENTINEL)
    with pytest.raises(aetcd.AuthenticationError) as info:
        await client.connect()
    _assert_frames_clean(info.value)
    assert SENTINEL not in repr(client)
    async with aetcd.Client(auth_server.endpoint, username="root", password="r00t-pw") as root:
        with pytest.raises(aetcd.AuthenticationError) as direct:
            await root.authenticate("root", SENTINEL)
        _assert_frames_clean(direct.value)
        # The wrapper works on the wire: the right password still authenticates.
        assert await root.authenticate("root", aetcd.Secret("r00t-pw"))


def test_cli_settings_wrap_the_password() -> None:
    for argv in (
        {"g_user": f"root:{SENTINEL}", "g_password": None},
        {"g_user": "root", "g_password": SENTINEL},
    ):
        ns = argparse.Namespace(**argv)
        settings = resolve_settings(ns, {})
        assert isinstance(settings.password, aetcd.Secret)
        assert settings.password.reveal() == SENTINEL
        assert SENTINEL not in repr(settings) + repr(ns)
    ns = argparse.Namespace(g_user="root")
    settings = resolve_settings(ns, {"ETCDCTL_PASSWORD": SENTINEL})
    assert isinstance(settings.password, aetcd.Secret) and SENTINEL not in repr(settings)


async def test_other_users_passwords_leave_no_trace_in_frames(auth_server: EtcdServer) -> None:
    """user_add / user_change_password keep the password wrapped up to the wire:
    a refused call (here a user without the root role) shows it in no frame."""
    async with aetcd.Client(auth_server.endpoint, username="root", password="r00t-pw") as root:
        await root.user_add("bob", aetcd.Secret("b0b-pw"))
        async with aetcd.Client(auth_server.endpoint, username="bob", password="b0b-pw") as bob:
            for call in (
                lambda: bob.user_add("eve", SENTINEL),
                lambda: bob.user_add("eve", aetcd.Secret(SENTINEL)),
                lambda: bob.user_change_password("root", SENTINEL),
            ):
                with pytest.raises(aetcd.EtcdError) as refused:
                    await call()
                assert "permission denied" in str(refused.value)
                _assert_frames_clean(refused.value)
        # On the wire the wrapped password is the password.
        await root.user_change_password("bob", aetcd.Secret(SENTINEL))
        assert await root.authenticate("bob", SENTINEL)
        with pytest.raises(aetcd.EtcdError) as taken:
            await root.user_add("bob", SENTINEL)
        _assert_frames_clean(taken.value)


def test_cli_user_passwords_are_wrapped() -> None:
    from aetcd._cli.auth import _prepare_passwd, _prepare_user_add

    for argv in (
        {"user": f"eve:{SENTINEL}", "new_user_password": None},
        {"user": "eve", "new_user_password": SENTINEL},
    ):
        ns = argparse.Namespace(no_password=False, interactive=False, **argv)
        _prepare_user_add(ns)
        assert isinstance(ns.secret, aetcd.Secret) and ns.secret.reveal() == SENTINEL
        assert ns.name == "eve" and SENTINEL not in repr(ns)
    ns = argparse.Namespace(name="eve", new_password=SENTINEL, interactive=False)
    _prepare_passwd(ns)
    assert isinstance(ns.new_password, aetcd.Secret) and SENTINEL not in repr(ns)
