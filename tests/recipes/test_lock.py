"""Lock: exclusion, FIFO, timeouts, clean-up, fencing, and interop with etcdctl."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import weakref
from typing import Any

import pytest
from recipe_helpers import etcdctl, python_child

import aetcd
from aetcd import Op
from aetcd.recipes import Lock

# A child process: holds `lock` with a short TTL, reports, waits for "go" on stdin,
# then tries a fenced write and an unfenced one, and reports what etcd said.
HOLDER = """
import asyncio, json, sys
import aetcd
from aetcd import Op

async def main():
    endpoint, name, data = sys.argv[1:4]
    async with aetcd.Client(endpoint, timeout=3) as client:
        lock = client.lock(name, ttl=2)
        await lock.acquire()
        print(json.dumps({"key": lock.key.decode(), "revision": lock.revision}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        fenced = await client.txn([lock.guard()], [Op.put(data, "holder-fenced")])
        await client.put(data, "holder-unfenced")
        print(json.dumps({"fenced": fenced.succeeded, "held": lock.held}), flush=True)

asyncio.run(main())
"""

# Increments a counter N times, read-modify-write, under the lock.
INCREMENTER = """
import asyncio, sys
import aetcd

async def main():
    endpoint, name, counter, n = sys.argv[1:5]
    async with aetcd.Client(endpoint) as client:
        for _ in range(int(n)):
            async with client.lock(name, ttl=5):
                kv = (await client.get(counter)).first
                value = int(kv.value) if kv else 0
                await asyncio.sleep(0.001)
                await client.put(counter, str(value + 1))
    print("done", flush=True)

asyncio.run(main())
"""


async def test_mutual_exclusion_across_processes(
    etcd_server: Any, etcd_prefix: str, spawn: Any
) -> None:
    name, counter = etcd_prefix + "lock", etcd_prefix + "counter"
    children = [
        await spawn(python_child(INCREMENTER, etcd_server.endpoint, name, counter, "15"))
        for _ in range(3)
    ]
    for child in children:
        assert await child.line(timeout=60) == "done"
    async with aetcd.Client(etcd_server.endpoint) as client:
        kv = (await client.get(counter)).first
        assert kv is not None and kv.value == b"45", "an increment was lost: not exclusive"
        assert (await client.get(name + "/", prefix=True)).count == 0


async def test_fencing_stops_a_paused_holder(
    etcd_server: Any, etcd_prefix: str, spawn: Any
) -> None:
    name, data = etcd_prefix + "lock", etcd_prefix + "data"
    holder = await spawn(python_child(HOLDER, etcd_server.endpoint, name, data))
    first = json.loads(await holder.line())
    assert first["key"].startswith(name + "/")
    holder.signal(signal.SIGSTOP)  # a GC pause, a VM freeze...
    async with aetcd.Client(etcd_server.endpoint) as client:
        # The holder's lease expires (TTL 2 s): the lock passes to us.
        async with client.lock(name, ttl=5, timeout=15) as lock:
            assert lock.revision > first["revision"]
            await client.txn([lock.guard()], [Op.put(data, "new-holder")])
            holder.signal(signal.SIGCONT)
            await holder.send("go")
            report = json.loads(await holder.line())
            # Fencing: the old holder's guarded write was refused by etcd...
            assert report["fenced"] is False
            # ...while an unguarded write went through: why fencing is needed.
            kv = (await client.get(data)).first
            assert kv is not None and kv.value == b"holder-unfenced"
            assert await lock.is_owner()


async def test_fifo_order(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "fifo"
    order: list[int] = []
    holder = etcd_client.lock(name)
    await holder.acquire()

    async def waiter(i: int) -> None:
        async with etcd_client.lock(name):
            order.append(i)

    tasks = []
    async with etcd_client.watch(name + "/", prefix=True) as queued:
        for i in range(6):
            tasks.append(asyncio.create_task(waiter(i)))
            # Wait until waiter i is queued (its key written) before starting the next.
            async with asyncio.timeout(10):
                await anext(aiter(queued))
    await holder.release()
    await asyncio.gather(*tasks)
    assert order == list(range(6))


async def test_try_acquire_timeout_and_cleanup(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "t"
    async with etcd_client.lock(name) as held:
        assert held.key.startswith(name.encode() + b"/")
        other = etcd_client.lock(name)
        assert await other.try_acquire() is False
        with pytest.raises(aetcd.LockTimeoutError):
            await other.acquire(timeout=0.3)
        with pytest.raises(aetcd.LockTimeoutError):
            async with etcd_client.lock(name, timeout=0.2):
                raise AssertionError("the body must not run unlocked")
        # A cancelled waiter removes its key too.
        async with etcd_client.watch(name + "/", prefix=True) as queued:
            task = asyncio.create_task(etcd_client.lock(name).acquire())
            await asyncio.wait_for(anext(queued), 10)  # the waiter's key is written
        assert (await etcd_client.get(name + "/", prefix=True)).count == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await etcd_client.get(name + "/", prefix=True)).count == 1
        assert await held.is_owner()
    assert not await held.is_owner()
    assert (await etcd_client.get(name + "/", prefix=True)).count == 0
    with pytest.raises(RuntimeError):
        held.key  # noqa: B018 - not held any more


async def test_release_is_fenced_and_idempotent(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "r"
    lock = etcd_client.lock(name)
    await lock.acquire()
    key = lock.key
    await lock.release()
    await lock.release()  # no-op
    assert not await lock.is_owner()
    assert (await etcd_client.get(key)).count == 0


async def test_private_sessions_are_reused_never_shared(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "p"
    first = etcd_client.lock(name)
    await first.acquire()
    lease_of = lambda lock: int(lock.key.rsplit(b"/", 1)[1], 16)  # noqa: E731
    lease_id = lease_of(first)
    # A second private lock held at the same time has a lease of its own.
    other = etcd_client.lock(etcd_prefix + "q")
    await other.acquire()
    other_id = lease_of(other)
    assert other_id != lease_id
    key = first.key
    await first.release()
    assert (await etcd_client.get(key)).count == 0
    # The released lease holds no keys and stays alive for the next private lock.
    info = await etcd_client.time_to_live(lease_id, keys=True)
    assert info.ttl > 0 and info.keys == []
    async with etcd_client.lock(name) as again:
        assert lease_of(again) == lease_id
        assert again.revision > 0
    await other.release()
    # A lease revoked while idle is not reused.
    await etcd_client.revoke(lease_id)
    async with asyncio.timeout(10):
        async with etcd_client.lock(name) as fresh:
            assert lease_of(fresh) != lease_id


async def test_release_on_a_shared_session_keeps_the_lease(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    async with etcd_client.session(ttl=10) as session:
        lock = Lock(session, etcd_prefix + "k")
        await lock.acquire()
        key = lock.key
        await lock.release()
        assert (await etcd_client.get(key)).count == 0
        assert (await etcd_client.time_to_live(session.lease_id)).ttl > 0
        assert session.alive


async def test_lock_loss_is_visible(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    async with etcd_client.session(ttl=5) as session:
        lock = Lock(session, etcd_prefix + "lost")
        await lock.acquire()
        assert lock.held
        await etcd_client.revoke(session.lease_id)  # e.g. an operator, or expiry
        async with asyncio.timeout(10):
            await lock.lost()
        assert not lock.held
        assert not await lock.is_owner()


async def test_two_locks_on_one_session_share_the_key(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    # As in Go: locks of one session do not exclude each other (same key).
    async with etcd_client.session(ttl=10) as session:
        a, b = Lock(session, etcd_prefix + "s"), Lock(session, etcd_prefix + "s")
        await a.acquire()
        assert await b.try_acquire()
        assert a.key == b.key and a.revision == b.revision
        await b.release()
        await a.release()


async def test_bad_names(etcd_client: aetcd.Client) -> None:
    with pytest.raises(aetcd.EmptyKeyError):
        etcd_client.lock("")
    with pytest.raises(TypeError):
        etcd_client.lock(5)  # type: ignore[arg-type]


async def test_etcdctl_holds_python_waits(etcd_server: Any, etcd_prefix: str, spawn: Any) -> None:
    name = etcd_prefix + "ctl"
    ctl = await spawn(etcdctl(etcd_server.endpoint, "lock", name))
    key = await ctl.line()
    assert key.startswith(name + "/")
    async with aetcd.Client(etcd_server.endpoint) as client:
        held = (await client.get(key)).first
        assert held is not None and held.lease != 0
        assert key == f"{name}/{held.lease:x}"  # the very layout we write
        lock = client.lock(name)
        assert not await lock.try_acquire()
        waiting = asyncio.create_task(lock.acquire(timeout=20))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        ctl.signal(signal.SIGTERM)  # etcdctl unlocks on SIGTERM
        await waiting
        assert lock.key != key.encode() and await lock.is_owner()
        await lock.release()


async def test_python_holds_etcdctl_waits(etcd_server: Any, etcd_prefix: str, spawn: Any) -> None:
    name = etcd_prefix + "py"
    async with aetcd.Client(etcd_server.endpoint) as client:
        lock = client.lock(name)
        await lock.acquire()
        ctl = await spawn(
            etcdctl(etcd_server.endpoint, "lock", name, "--", "sh", "-c", "echo got:$ETCD_LOCK_KEY")
        )
        with pytest.raises(TimeoutError):
            await ctl.line(timeout=1.0)  # blocked behind us
        await lock.release()
        line = await ctl.line()
        assert line.startswith(f"got:{name}/")
        assert await ctl.wait() == 0


async def test_idle_private_session_is_retired(
    etcd_client: aetcd.Client, etcd_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aetcd.recipes import session as session_mod

    monkeypatch.setattr(session_mod, "IDLE_SESSION_LIFETIME", 0.3)
    lease_of = lambda lock: int(lock.key.rsplit(b"/", 1)[1], 16)  # noqa: E731
    name = etcd_prefix + "idle"
    # Reused before the lifetime is up: the timer is cancelled, the lease kept.
    async with etcd_client.lock(name) as first:
        lease_id = lease_of(first)
    async with etcd_client.lock(name) as again:
        assert lease_of(again) == lease_id
        await asyncio.sleep(0.5)  # held longer than the idle lifetime: not retired
        assert again.held
    idle = etcd_client._idle_sessions()._by_ttl[again._owner.ttl]
    assert [s.lease_id for s in idle] == [lease_id]
    kept = idle[0]
    # Not reused in time: dropped from the idle sessions, its keep-alives stopped.
    await asyncio.sleep(0.5)
    assert idle == []
    assert not kept.alive
    assert "released" in str(kept.lease.lost_reason)
    keeper = etcd_client._leases._keepalive
    assert keeper is None or lease_id not in keeper.leases
    # The server still has it (no keys) until its TTL runs out; no renewal now.
    info = await etcd_client.time_to_live(lease_id, keys=True)
    assert info.keys == [] and 0 < info.ttl <= info.granted_ttl
    async with etcd_client.lock(name) as fresh:
        assert lease_of(fresh) != lease_id


async def test_timeout_bounds_only_the_waiting(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    """acquire(timeout=0) takes a free lock (the enqueue round trip is not the
    wait) and gives up at once on a held one, removing its waiter key."""
    name = etcd_prefix + "zero"
    first = etcd_client.lock(name)
    await first.acquire(timeout=0)
    assert first.held and await first.is_owner()
    other = etcd_client.lock(name)
    with pytest.raises(aetcd.LockTimeoutError):
        await other.acquire(timeout=0)
    assert not other.held
    assert (await etcd_client.get(name + "/", prefix=True)).count == 1
    await first.release()
    async with etcd_client.lock(name, timeout=0) as lock:  # free again
        assert await lock.is_owner()
    assert (await etcd_client.get(name + "/", prefix=True)).count == 0


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, aetcd.InvalidArgumentError),
        (float("nan"), aetcd.InvalidArgumentError),
        ("1", TypeError),
    ],
)
async def test_bad_timeout_rejected_before_io(
    etcd_client: aetcd.Client, etcd_prefix: str, timeout: Any, error: type[Exception]
) -> None:
    name = etcd_prefix + "bad"
    with pytest.raises(error):
        await etcd_client.lock(name).acquire(timeout=timeout)
    with pytest.raises(error):
        etcd_client.lock(name, timeout=timeout)
    with pytest.raises(error):
        await etcd_client.election(name).campaign("v", timeout=timeout)
    assert (await etcd_client.get(name + "/", prefix=True)).count == 0


async def test_close_releases_a_client_with_an_idle_private_session(
    etcd_server: Any, etcd_prefix: str
) -> None:
    """The idle private session a lock leaves behind (and its retirement timer)
    belongs to the client: after close() nothing keeps the client alive."""

    async def use_and_close() -> weakref.ref[aetcd.Client]:
        # In a frame of its own: grpcio < 1.7x reads the f_locals of every task's
        # outermost frame when a channel closes, and that snapshot would keep a
        # local of this test's frame alive (the test's reference, not aetcd's).
        client = aetcd.Client(etcd_server.endpoint)
        async with client.lock(etcd_prefix + "idle-at-close"):
            pass
        await client.close()
        return weakref.ref(client)

    ref = await use_and_close()
    gc.collect()
    assert ref() is None
