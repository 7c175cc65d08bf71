"""Election: campaign order, failover, fenced proclaim/resign, observe, etcdctl interop."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
from recipe_helpers import etcdctl, python_child

import aetcd
from aetcd.recipes import Election

CANDIDATE = """
import asyncio, sys
import aetcd

async def main():
    endpoint, name, value = sys.argv[1:4]
    async with aetcd.Client(endpoint) as client:
        election = client.election(name, ttl=2)
        await election.campaign(value)
        print("leader", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_campaign_resign_and_order(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "e"
    first, second = etcd_client.election(name), etcd_client.election(name)
    assert await first.leader() is None
    await first.campaign("one")
    assert first.is_leader
    leader = await first.leader()
    assert leader is not None and leader.value == b"one" and leader.key == first.key
    waiting = asyncio.create_task(second.campaign("two"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await first.resign()
    assert not first.is_leader
    await asyncio.wait_for(waiting, 10)
    leader = await second.leader()
    assert leader is not None and leader.value == b"two"
    await second.resign()
    assert await second.leader() is None


async def test_proclaim_is_fenced(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    election = etcd_client.election(etcd_prefix + "p")
    await election.campaign("v1")
    await election.proclaim("v2")
    leader = await election.leader()
    assert leader is not None and leader.value == b"v2"
    assert election.key is not None
    # Someone deletes the leader key (an operator, or lease expiry): we are deposed.
    await etcd_client.delete(election.key)
    with pytest.raises(aetcd.ElectionNotLeaderError):
        await election.proclaim("v3")
    await election.resign()
    with pytest.raises(aetcd.ElectionNotLeaderError):
        await election.proclaim("v4")


async def test_cancelled_campaign_withdraws(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "c"
    leader = etcd_client.election(name)
    await leader.campaign("a")
    async with etcd_client.watch(name + "/", prefix=True) as joined:
        task = asyncio.create_task(etcd_client.election(name).campaign("b"))
        # b's key is in (after a lease grant and a txn): the only change meanwhile.
        event = await asyncio.wait_for(anext(joined), 10)
        assert event.type == aetcd.EventType.PUT and event.kv.value == b"b"
    assert not task.done()
    assert (await etcd_client.get(name + "/", prefix=True)).count == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await etcd_client.get(name + "/", prefix=True)).count == 1
    with pytest.raises(TimeoutError):
        await etcd_client.election(name).campaign("c", timeout=0.2)
    assert (await etcd_client.get(name + "/", prefix=True)).count == 1
    await leader.resign()


async def test_observe_yields_each_value_in_order(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "o"
    seen: list[bytes] = []
    got = asyncio.Event()

    async def observe() -> None:
        async for kv in etcd_client.election(name).observe():
            seen.append(kv.value)
            got.set()

    async def until(value: bytes) -> None:
        # Each step waits for the observer (the rapid and slow-consumer tests
        # below check that nothing is missed without this help).
        async with asyncio.timeout(10):
            while value not in seen:
                got.clear()
                await got.wait()

    observer = asyncio.create_task(observe())
    await asyncio.sleep(0.2)  # nobody leads yet: the observer waits
    a, b = etcd_client.election(name), etcd_client.election(name)
    await a.campaign("a1")
    await until(b"a1")
    b_task = asyncio.create_task(b.campaign("b1"))
    await a.proclaim("a2")
    await a.proclaim("a3")
    await until(b"a3")
    await a.resign()
    await b_task
    await until(b"b1")
    await b.proclaim("b2")
    await until(b"b2")
    observer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await observer
    assert seen == [b"a1", b"a2", b"a3", b"b1", b"b2"]
    await b.resign()


async def test_observe_slow_consumer_sees_every_leader(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "slow"
    elections = [etcd_client.election(name) for _ in range(3)]
    await elections[0].campaign("leader-0")
    seen: list[bytes] = []
    reading = asyncio.Event()

    async def observe() -> None:
        async for kv in etcd_client.election(name).observe():
            seen.append(kv.value)
            reading.set()
            if kv.value == b"leader-2":
                return
            await asyncio.sleep(1)  # a slow consumer

    observer = asyncio.create_task(observe())
    await asyncio.wait_for(reading.wait(), 10)
    async with etcd_client.watch(name + "/", prefix=True) as joined:
        second = asyncio.create_task(elections[1].campaign("leader-1"))
        await asyncio.wait_for(anext(joined), 10)  # leader-1 queued before leader-2
    third = asyncio.create_task(elections[2].campaign("leader-2"))
    await elections[0].resign()
    await asyncio.wait_for(second, 10)
    await asyncio.sleep(0.2)  # leader-1 leads for 200 ms, while the consumer sleeps
    await elections[1].resign()
    await asyncio.wait_for(third, 10)
    await asyncio.wait_for(observer, 10)
    assert seen == [b"leader-0", b"leader-1", b"leader-2"]
    await elections[2].resign()


async def test_observe_rapid_leaderships_each_once_in_order(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "rapid"
    led: list[bytes] = []  # each value, in the order it was actually held
    seen: list[bytes] = []
    first_seen = asyncio.Event()

    async def observe() -> None:
        async for kv in etcd_client.election(name).observe():
            seen.append(kv.value)
            first_seen.set()
            if kv.value == b"end":
                return

    async def lead(value: str) -> None:
        election = etcd_client.election(name)
        await election.campaign(value)
        led.append(value.encode())
        if value.endswith("0"):  # a proclaim is a change too
            await election.proclaim(value + "'")
            led.append(value.encode() + b"'")
        await asyncio.sleep(0.02)
        await election.resign()

    observer = asyncio.create_task(observe())
    # observe() starts from the leadership current when it first reads: hold one
    # until the observer has reported it, so no round can run before it watches
    # (a fixed sleep here lost that race on a loaded machine).
    first = etcd_client.election(name)
    await first.campaign("start")
    led.append(b"start")
    await asyncio.wait_for(first_seen.wait(), 10)
    await first.resign()
    for round_ in range(5):
        await asyncio.wait_for(asyncio.gather(*(lead(f"r{round_}-{i}") for i in range(4))), 20)
    last = etcd_client.election(name)
    await last.campaign("end")
    await asyncio.wait_for(observer, 10)
    assert seen == [*led, b"end"]
    await last.resign()


async def test_failover_when_leader_process_dies(
    etcd_server: Any, etcd_prefix: str, spawn: Any
) -> None:
    name = etcd_prefix + "f"
    child = await spawn(python_child(CANDIDATE, etcd_server.endpoint, name, "child"))
    assert await child.line() == "leader"
    async with aetcd.Client(etcd_server.endpoint) as client:
        follower = client.election(name)
        task = asyncio.create_task(follower.campaign("follower"))
        await asyncio.sleep(0.3)
        assert not task.done()
        child.signal(signal.SIGKILL)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(task, 15)
        took = loop.time() - start
        assert took < 2 + 3, f"failover took {took:.1f} s for a 2 s TTL"
        leader = await follower.leader()
        assert leader is not None and leader.value == b"follower"
        await follower.resign()


async def test_etcdctl_leads_python_follows(etcd_server: Any, etcd_prefix: str, spawn: Any) -> None:
    name = etcd_prefix + "ctl"
    ctl = await spawn(etcdctl(etcd_server.endpoint, "elect", name, "from-etcdctl"))
    key = await ctl.line()
    assert key.startswith(name + "/")
    assert await ctl.line() == "from-etcdctl"
    async with aetcd.Client(etcd_server.endpoint) as client:
        mine = client.election(name)
        leader = await mine.leader()
        assert leader is not None and leader.key == key.encode() and leader.value == b"from-etcdctl"
        task = asyncio.create_task(mine.campaign("from-python"))
        await asyncio.sleep(0.3)
        assert not task.done()
        ctl.signal(signal.SIGTERM)  # etcdctl resigns on SIGTERM
        await asyncio.wait_for(task, 10)
        leader = await mine.leader()
        assert leader is not None and leader.value == b"from-python"
        await mine.resign()


async def test_python_leads_etcdctl_observes_and_follows(
    etcd_server: Any, etcd_prefix: str, spawn: Any
) -> None:
    name = etcd_prefix + "py"
    async with aetcd.Client(etcd_server.endpoint) as client:
        mine = client.election(name)
        await mine.campaign("py-1")
        listener = await spawn(etcdctl(etcd_server.endpoint, "elect", "-l", name))
        assert (await listener.line()) == mine.key.decode()  # type: ignore[union-attr]
        assert await listener.line() == "py-1"
        await mine.proclaim("py-2")
        assert (await listener.line()) == mine.key.decode()  # type: ignore[union-attr]
        assert await listener.line() == "py-2"
        follower = await spawn(etcdctl(etcd_server.endpoint, "elect", name, "ctl-2"))
        with pytest.raises(TimeoutError):
            await follower.line(timeout=1.0)  # waits behind the Python leader
        await mine.resign()
        follower_key = await follower.line()
        assert await follower.line() == "ctl-2"
        assert follower_key.startswith(name + "/")
        assert (await listener.line()) == follower_key
        assert await listener.line() == "ctl-2"


async def test_shared_session_election(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    async with etcd_client.session(ttl=10) as session:
        election = Election(session, etcd_prefix + "s")
        await election.campaign("x")
        assert election.key == f"{etcd_prefix}s/{session.lease_id:x}".encode()
        await election.resign()
        assert session.alive  # a shared session outlives the candidacy


async def test_campaign_timeout_bounds_only_the_waiting(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "zero"
    first = etcd_client.election(name)
    await first.campaign("first", timeout=0)  # nobody leads: the round trips still run
    assert first.is_leader
    other = etcd_client.election(name)
    with pytest.raises(TimeoutError):
        await other.campaign("other", timeout=0)
    assert other.key is None
    assert (await etcd_client.get(name + "/", prefix=True)).count == 1
    await first.resign()
