"""Heartbeat: the key exists while the holder lives, comes back after a lost lease,
and goes away on exit, on cancellation, and (within the TTL) on a crash."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from recipe_helpers import python_child

import aetcd
from aetcd.recipes.heartbeat import Heartbeat, is_alive
from aetcd.testing.pytest_plugin import EtcdServerFactory

# A child process holding a heartbeat until it is killed.
HOLDER = """
import asyncio, sys
import aetcd

async def main():
    endpoint, key, ttl = sys.argv[1:4]
    async with aetcd.Client(endpoint) as client:
        async with client.heartbeat(key, "child", ttl=int(ttl)) as hb:
            print(hb.lease_id, flush=True)
            await asyncio.Event().wait()

asyncio.run(main())
"""


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> float:
    """Wait until *check* holds; return how long it took."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within, f"condition not met within {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_key_present_while_inside_gone_after(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    key = etcd_prefix + "heart-ping"
    assert not await is_alive(etcd_client, key)
    async with etcd_client.heartbeat(key, "live", ttl=5) as hb:
        assert isinstance(hb, Heartbeat)
        kv = (await etcd_client.get(key)).first
        assert kv is not None and kv.value == b"live" and kv.lease == hb.lease_id
        assert (await etcd_client.time_to_live(hb.lease_id)).granted_ttl == 5
        assert hb.alive and hb.registrations == 1 and hb.lost_reason is None
        assert await is_alive(etcd_client, key)
        await hb.restored()  # alive: returns at once
        assert "alive" in repr(hb)
        lease_id = hb.lease_id
    # Revoked on exit: gone at once, not after the TTL.
    assert not await is_alive(etcd_client, key)
    with pytest.raises(aetcd.LeaseNotFoundError):
        await etcd_client.time_to_live(lease_id)
    assert not hb.alive
    await hb.lost()  # returns at once
    with pytest.raises(RuntimeError):
        await hb.restored()


async def test_bad_input_rejected_before_io(etcd_client: aetcd.Client) -> None:
    with pytest.raises(TypeError):
        etcd_client.heartbeat(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        etcd_client.heartbeat("k", 1)  # type: ignore[arg-type]
    with pytest.raises(aetcd.InvalidArgumentError):
        etcd_client.heartbeat("k", ttl=0)
    with pytest.raises(aetcd.EmptyKeyError):
        etcd_client.heartbeat("")
    with pytest.raises(RuntimeError):
        _ = Heartbeat(etcd_client, "k").lease_id


async def test_lease_revoked_elsewhere_key_comes_back(
    etcd_server: Any, etcd_client: aetcd.Client, etcd_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = etcd_prefix + "hb"
    ttl = 3
    async with etcd_client.heartbeat(key, "v", ttl=ttl) as hb:
        first = hb.lease_id
        async with aetcd.Client(etcd_server.endpoint) as other:
            await other.revoke(first)
            assert (await other.get(key)).count == 0

            async def back() -> bool:
                kv = (await other.get(key)).first
                return kv is not None and kv.lease != first

            took = await eventually(back, within=ttl + 2)
        assert hb.registrations == 2 and hb.alive and hb.lease_id != first
        assert isinstance(hb.lost_reason, aetcd.LeaseLostError)
        kv = (await etcd_client.get(key)).first
        assert kv is not None and kv.value == b"v" and kv.lease == hb.lease_id
    assert not await is_alive(etcd_client, key)
    assert any("lease" in r.message and "lost" in r.message for r in caplog.records)
    print(f"\nre-registered {took:.2f} s after the revoke")


async def test_server_down_longer_than_ttl(
    etcd_server_factory: EtcdServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await etcd_server_factory()
    ttl = 2
    async with aetcd.Client(server.endpoint, timeout=1) as client:
        async with client.heartbeat("hb", "v", ttl=ttl) as hb:
            first = hb.lease_id
            server.kill()
            await asyncio.sleep(ttl + 1.5)
            assert not hb.alive  # the lease could not be renewed for longer than its TTL
            await hb.lost()
            await server.restart()
            start = time.monotonic()
            async with asyncio.timeout(20):
                await hb.restored()
            took = time.monotonic() - start
            assert hb.lease_id != first and hb.registrations == 2
            kv = (await client.get("hb")).first
            assert kv is not None and kv.value == b"v" and kv.lease == hb.lease_id
            # etcd restores leases on restart with a fresh TTL: the old one was revoked.
            with pytest.raises(aetcd.LeaseNotFoundError):
                await client.time_to_live(first)
        assert (await client.get("hb")).count == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("registration attempt" in r.message for r in warnings), "retries were silent"
    print(f"\nre-registered {took:.2f} s after the restart")


async def test_killed_process_key_disappears_within_ttl(
    etcd_server: Any, etcd_client: aetcd.Client, etcd_prefix: str, spawn: Any
) -> None:
    key = etcd_prefix + "child"
    ttl = 2
    child = await spawn(python_child(HOLDER, etcd_server.endpoint, key, str(ttl)))
    lease_id = int(await child.line())
    kv = (await etcd_client.get(key)).first
    assert kv is not None and kv.value == b"child" and kv.lease == lease_id
    child.signal(signal.SIGKILL)
    await child.wait()

    async def gone() -> bool:
        return not await is_alive(etcd_client, key)

    took = await eventually(gone, within=ttl + 2)
    print(f"\nkey gone {took:.2f} s after SIGKILL (ttl {ttl} s)")


async def test_cancellation_inside_still_removes_key(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    key = etcd_prefix + "hb"
    entered = asyncio.Event()
    holder: list[Heartbeat] = []

    async def body() -> None:
        async with etcd_client.heartbeat(key, ttl=30) as hb:
            holder.append(hb)
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(body())
    await entered.wait()
    assert await is_alive(etcd_client, key)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await is_alive(etcd_client, key)  # revoked, not left to expire in 30 s
    assert holder[0]._task is None  # the background task was ended and awaited
