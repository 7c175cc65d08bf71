"""Every public network call of the client ends within its deadline, whatever path it takes.

One table, :data:`CALLS`, runs each public call of :class:`aetcd.Client` (KV,
txn, lease calls and contexts, watch entry, cluster, maintenance and auth
calls, and the recipes' entry points) with a short timeout against a client
whose only member is dead (nothing listening) or blackholed (through
:class:`aetcd.testing.FaultProxy`, after the client connected). Each must end,
with an error or not, by its timeout plus a small slack: never twice the
timeout because two steps of it (waiting for a connected member, then the
call) each got the whole deadline. A second test keeps the table complete.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import aetcd
from aetcd.testing import FaultProxy

T = 0.3  # the deadline of every call (and the client's default)
SLACK = 0.15  # enough for a loaded 2-core box, well below another T

Call = Callable[[aetcd.Client, Path], Awaitable[Any]]


def _lease(client: aetcd.Client) -> aetcd.Lease:
    return aetcd.Lease(client, 0x1234, 10, time.monotonic())


async def _enter(manager: Any) -> None:
    async with manager:
        pass


async def _snapshot(client: aetcd.Client) -> None:
    async with client.snapshot(timeout=T) as stream:
        async for _ in stream:
            pass


async def _campaign(client: aetcd.Client) -> None:
    await client.election("e").campaign("v", timeout=T)


async def _leader(client: aetcd.Client) -> None:
    await client.election("e").leader(timeout=T)


async def _watch_start(client: aetcd.Client) -> None:
    watch = client.watch("k")
    try:
        await watch.start(timeout=T)
    finally:
        await watch.cancel()


#: name of a public Client attribute (or "attribute:variant") -> how to call it
CALLS: dict[str, Call] = {
    # KV
    "get": lambda c, _: c.get("k", timeout=T),
    "get:serializable": lambda c, _: c.get("k", serializable=True, timeout=T),
    "put": lambda c, _: c.put("k", "v", timeout=T),
    "delete": lambda c, _: c.delete("k", timeout=T),
    "txn": lambda c, _: c.txn(success=[aetcd.Op.put("k", "v")], timeout=T),
    "txn:read-only": lambda c, _: c.txn(success=[aetcd.Op.get("k")], timeout=T),
    "do": lambda c, _: c.do(aetcd.Op.get("k"), timeout=T),
    "compact": lambda c, _: c.compact(1, timeout=T),
    # leases
    "grant": lambda c, _: c.grant(10, timeout=T),
    "grant:id": lambda c, _: c.grant(10, id=0x1234, timeout=T),
    "revoke": lambda c, _: c.revoke(0x1234, timeout=T),
    "keepalive_once": lambda c, _: c.keepalive_once(0x1234, timeout=T),
    "keepalive_once:Lease.refresh": lambda c, _: _lease(c).refresh(timeout=T),
    "revoke:Lease.revoke": lambda c, _: _lease(c).revoke(timeout=T),
    "time_to_live": lambda c, _: c.time_to_live(0x1234, timeout=T),
    "leases": lambda c, _: c.leases(timeout=T),
    "lease": lambda c, _: _enter(c.lease(10)),
    "keepalive": lambda c, _: _enter(c.keepalive(0x1234)),
    # watch
    "watch": lambda c, _: _enter(c.watch("k")),
    "watch:start": lambda c, _: _watch_start(c),
    "request_progress": lambda c, _: c.request_progress(),
    # cluster
    "members": lambda c, _: c.members(timeout=T),
    "members:linearizable": lambda c, _: c.members(linearizable=True, timeout=T),
    "member_add": lambda c, _: c.member_add("http://127.0.0.1:1", timeout=T),
    "member_remove": lambda c, _: c.member_remove(1, timeout=T),
    "member_update": lambda c, _: c.member_update(1, "http://127.0.0.1:1", timeout=T),
    "member_promote": lambda c, _: c.member_promote(1, timeout=T),
    # maintenance
    "status": lambda c, _: c.status(timeout=T),
    "alarms": lambda c, _: c.alarms(timeout=T),
    "disarm_alarms": lambda c, _: c.disarm_alarms(timeout=T),
    "defragment": lambda c, _: c.defragment(timeout=T),
    "downgrade": lambda c, _: c.downgrade(aetcd.DowngradeAction.VALIDATE, "3.4", timeout=T),
    "hash_kv": lambda c, _: c.hash_kv(timeout=T),
    "move_leader": lambda c, _: c.move_leader(1, timeout=T),
    "snapshot": lambda c, _: _snapshot(c),
    "save_snapshot": lambda c, tmp: c.save_snapshot(tmp / "snap.db", timeout=T),
    # auth
    "auth_enable": lambda c, _: c.auth_enable(timeout=T),
    "auth_disable": lambda c, _: c.auth_disable(timeout=T),
    "auth_status": lambda c, _: c.auth_status(timeout=T),
    "authenticate": lambda c, _: c.authenticate("u", "p", timeout=T),
    "user_add": lambda c, _: c.user_add("u", "p", timeout=T),
    "user_get": lambda c, _: c.user_get("u", timeout=T),
    "user_list": lambda c, _: c.user_list(timeout=T),
    "user_delete": lambda c, _: c.user_delete("u", timeout=T),
    "user_change_password": lambda c, _: c.user_change_password("u", "p", timeout=T),
    "user_grant_role": lambda c, _: c.user_grant_role("u", "r", timeout=T),
    "user_revoke_role": lambda c, _: c.user_revoke_role("u", "r", timeout=T),
    "role_add": lambda c, _: c.role_add("r", timeout=T),
    "role_get": lambda c, _: c.role_get("r", timeout=T),
    "role_list": lambda c, _: c.role_list(timeout=T),
    "role_delete": lambda c, _: c.role_delete("r", timeout=T),
    "role_grant_permission": lambda c, _: c.role_grant_permission("r", "k", timeout=T),
    "role_revoke_permission": lambda c, _: c.role_revoke_permission("r", "k", timeout=T),
    # client
    "connect": lambda c, _: c.connect(timeout=T),
    # recipes' entry points (their timeout, else the client's)
    "lock": lambda c, _: _enter(c.lock("l", timeout=T)),
    "session": lambda c, _: _enter(c.session()),
    "election": lambda c, _: _campaign(c),
    "election:leader": lambda c, _: _leader(c),
    "heartbeat": lambda c, _: _enter(c.heartbeat("hb")),
    "register": lambda c, _: _enter(c.register("svc", "127.0.0.1:1")),
    "discover": lambda c, _: _enter(c.discover("svc")),
    "config": lambda c, _: _enter(c.config("cfg/")),
}

#: public attributes of Client that make no network call
LOCAL = {"close", "closed", "endpoints", "settings"}


def test_every_public_call_is_in_the_table() -> None:
    public = {name for name in dir(aetcd.Client) if not name.startswith("_")}
    covered = {name.split(":")[0] for name in CALLS}
    assert covered <= public, covered - public
    assert public - LOCAL == covered, sorted(public - LOCAL - covered)
    coroutines = {
        name
        for name in public
        if inspect.iscoroutinefunction(inspect.getattr_static(aetcd.Client, name))
    }
    assert coroutines - {"close"} <= covered


async def _late_calls(client: aetcd.Client, tmp_path: Path) -> list[str]:
    late = []
    for name, call in CALLS.items():
        start = time.monotonic()
        try:
            await call(client, tmp_path)
        except (aetcd.EtcdError, TimeoutError):
            pass
        took = time.monotonic() - start
        if took > T + SLACK:
            late.append(f"{name}: {took:.3f} s")
    return late


@pytest.mark.slow
async def test_every_call_ends_in_time_with_the_only_member_dead(
    unused_tcp_port: int, tmp_path: Path
) -> None:
    async with aetcd.Client(f"127.0.0.1:{unused_tcp_port}", timeout=T) as client:
        assert await _late_calls(client, tmp_path) == []


@pytest.mark.slow
async def test_every_call_ends_in_time_with_the_only_member_blackholed(
    etcd_server_factory: Any, tmp_path: Path
) -> None:
    server = await etcd_server_factory()
    async with (
        FaultProxy([server.endpoint]) as proxy,
        aetcd.Client(proxy.endpoints, timeout=T) as client,
    ):
        await client.put("k", "v", timeout=5)  # connected
        await proxy.blackhole()
        assert await _late_calls(client, tmp_path) == []
