"""Go's experimental recipes: RWMutex, Barrier, DoubleBarrier, Queue, PriorityQueue."""

from __future__ import annotations

import asyncio
import random

import pytest
from recipe_helpers import BLOCKED, blocked

import aetcd
from aetcd.recipes.contrib import (
    Barrier,
    DoubleBarrier,
    PriorityQueue,
    Queue,
    RWMutex,
    TooManyClientsError,
)


async def keys_under(client: aetcd.Client, prefix: str) -> list[bytes]:
    return [kv.key for kv in (await client.get(prefix, prefix=True, keys_only=True)).kvs]


# -- RWMutex ---------------------------------------------------------------------------------


async def test_readers_share_writer_excludes(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    rw = RWMutex(etcd_client, etcd_prefix + "rw")
    readers = [rw.read_lock() for _ in range(5)]
    async with asyncio.timeout(10):
        await asyncio.gather(*(r.acquire() for r in readers))  # all hold together
    assert all(r.held for r in readers)
    assert all(r.key.startswith(rw.prefix + b"read/") for r in readers)

    writer = rw.write_lock()
    waiting_writer = await blocked(writer.acquire())
    for r in readers[:-1]:
        await r.release()
    await asyncio.sleep(BLOCKED)
    assert not waiting_writer.done(), "a writer got in while a reader still held"
    await readers[-1].release()
    async with asyncio.timeout(10):
        await waiting_writer
    assert writer.held and writer.key.startswith(rw.prefix + b"write/")

    # A writer excludes readers and other writers.
    reader_lock, other_writer = rw.read_lock(), rw.write_lock()
    async with etcd_client.watch(rw.prefix, prefix=True) as queued:
        events = aiter(queued)
        # Each one is queued (its key written) before the next arrives, so the
        # order of arrival does not depend on timing.
        reader = await blocked(reader_lock.acquire())
        async with asyncio.timeout(10):
            assert (await anext(events)).kv.key.startswith(rw.prefix + b"read/")
        second = await blocked(other_writer.acquire())
        async with asyncio.timeout(10):
            assert (await anext(events)).kv.key.startswith(rw.prefix + b"write/")
    await writer.release()
    async with asyncio.timeout(10):
        await reader  # the older reader goes first
    await asyncio.sleep(BLOCKED)
    assert not second.done(), "a writer got in while a reader held"
    await reader_lock.release()
    async with asyncio.timeout(10):
        await second
    await other_writer.release()
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_waiting_writer_blocks_later_readers(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    rw = RWMutex(etcd_client, etcd_prefix + "rw")
    order: list[str] = []

    async def hold(kind: str, name: str, seconds: float) -> None:
        lock = rw.read_lock() if kind == "read" else rw.write_lock()
        async with lock:
            order.append(f"+{name}")
            await asyncio.sleep(seconds)
            order.append(f"-{name}")

    async with (
        asyncio.timeout(20),
        etcd_client.watch(etcd_prefix + "rw/", prefix=True) as queued,
        asyncio.TaskGroup() as tg,
    ):
        events = aiter(queued)
        # Each contender starts once the previous one is queued (its key written),
        # so the order of arrival does not depend on timing.
        tg.create_task(hold("read", "r1", 0.6))
        await anext(events)
        tg.create_task(hold("write", "w", 0.1))
        await anext(events)
        tg.create_task(hold("read", "r2", 0.0))  # arrives after the waiting writer
    assert order == ["+r1", "-r1", "+w", "-w", "+r2", "-r2"]
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_rwmutex_timeout_and_cancel_clean_up(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    async with etcd_client.session(ttl=10) as session:
        rw = RWMutex(session, etcd_prefix + "rw")
        async with rw.write_lock() as writer:
            with pytest.raises(aetcd.LockTimeoutError):
                await rw.read_lock().acquire(timeout=0.3)
            with pytest.raises(aetcd.LockTimeoutError):
                async with rw.write_lock(timeout=0.3):
                    pytest.fail("entered without the lock")
            task = await blocked(rw.write_lock().acquire())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Only the holder's key is left: the waiters removed theirs.
            assert await keys_under(etcd_client, etcd_prefix) == [writer.key]
            res = await etcd_client.txn([writer.guard()], [aetcd.Op.put(etcd_prefix + "d", "x")])
            assert res.succeeded
        assert not writer.held
        assert await keys_under(etcd_client, etcd_prefix) == [(etcd_prefix + "d").encode()]


# -- Barrier ---------------------------------------------------------------------------------


async def test_barrier_releases_all_waiters(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    barrier = Barrier(etcd_client, etcd_prefix + "barrier")
    async with asyncio.timeout(5):
        await barrier.wait()  # not held: returns at once
    assert await barrier.hold()
    assert not await barrier.hold()  # already held
    waiters = [
        await blocked(Barrier(etcd_client, etcd_prefix + "barrier").wait()) for _ in range(3)
    ]
    assert await barrier.release()
    async with asyncio.timeout(10):
        await asyncio.gather(*waiters)
    assert not await barrier.release()


async def test_barrier_context_manager(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    barrier = Barrier(etcd_client, etcd_prefix + "barrier")
    async with barrier:
        waiter = await blocked(barrier.wait())
    async with asyncio.timeout(10):
        await waiter
    assert await keys_under(etcd_client, etcd_prefix) == []


# -- DoubleBarrier ---------------------------------------------------------------------------


async def test_double_barrier_enter_and_leave_together(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name, count = etcd_prefix + "db", 3
    async with etcd_client.session(ttl=10) as session:
        parts = [DoubleBarrier(session, name, count) for _ in range(count)]
        entering = [await blocked(p.enter()) for p in parts[:-1]]
        await parts[-1].enter()  # the last one opens the barrier for all
        async with asyncio.timeout(10):
            await asyncio.gather(*entering)

        with pytest.raises(TooManyClientsError):
            await DoubleBarrier(session, name, count).enter()
        with pytest.raises(TooManyClientsError):
            await DoubleBarrier(etcd_client, name, count).enter()

        leaving = [await blocked(p.leave()) for p in parts[:-1]]
        await parts[-1].leave()
        async with asyncio.timeout(10):
            await asyncio.gather(*leaving)
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_double_barrier_rounds_with_private_sessions(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name, count = etcd_prefix + "db", 4
    log: list[str] = []

    async def participant(i: int) -> None:
        for rnd in range(2):
            await asyncio.sleep(0.05 * i)  # arrive at different times
            barrier = DoubleBarrier(etcd_client, name, count)
            log.append(f"enter{rnd}")
            await barrier.enter()
            log.append(f"in{rnd}")
            await asyncio.sleep(0.05 * (count - i))
            log.append(f"leave{rnd}")
            await barrier.leave()
            log.append(f"out{rnd}")

    async with asyncio.timeout(30), asyncio.TaskGroup() as tg:
        for i in range(count):
            tg.create_task(participant(i))

    def at(event: str) -> list[int]:
        return [j for j, e in enumerate(log) if e == event]

    for rnd in range(2):
        assert all(len(at(f"{e}{rnd}")) == count for e in ("enter", "in", "leave", "out"))
        assert max(at(f"enter{rnd}")) < min(at(f"in{rnd}")), "in before all had entered"
        assert max(at(f"leave{rnd}")) < min(at(f"out{rnd}")), "out before all had left"
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_double_barrier_cancelled_enter_removes_key(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    async with etcd_client.watch(etcd_prefix, prefix=True) as written:
        task = await blocked(DoubleBarrier(etcd_client, etcd_prefix + "db", 2).enter())
        async with asyncio.timeout(10):
            await anext(aiter(written))  # its key is in (slow on a loaded box)
    assert len(await keys_under(etcd_client, etcd_prefix)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_double_barrier_timeouts_bound_only_the_waiting(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    """enter/leave(timeout=0) pass a barrier they complete or empty, and give up
    at once otherwise, removing this participant's key."""
    name = etcd_prefix + "db"
    first, second = DoubleBarrier(etcd_client, name, 2), DoubleBarrier(etcd_client, name, 2)
    async with asyncio.timeout(10):
        with pytest.raises(TimeoutError):
            await first.enter(timeout=0)
        assert first.key is None and await keys_under(etcd_client, etcd_prefix) == []
        with pytest.raises(TimeoutError):
            await first.enter(timeout=0.05)
        assert await keys_under(etcd_client, etcd_prefix) == []
    async with etcd_client.watch(name + "/waiters/", prefix=True) as written:
        entering = await blocked(first.enter(timeout=30))
        async with asyncio.timeout(10):
            await anext(aiter(written))  # first's key is in (slow on a loaded box)
    async with asyncio.timeout(10):
        await second.enter(timeout=0)  # completes the barrier: no waiting
        await entering
        with pytest.raises(TimeoutError):
            await first.leave(timeout=0)  # the other one is still inside
        assert first.key is None and await keys_under(etcd_client, name + "/waiters/") == [
            second.key
        ]
        await second.leave(timeout=0)  # the last one out
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_double_barrier_rejects_bad_timeouts_before_io() -> None:
    offline = aetcd.Client("127.0.0.1:1", timeout=1)  # any I/O would fail
    barrier = DoubleBarrier(offline, "db", 2)
    with pytest.raises(aetcd.InvalidArgumentError):
        await barrier.enter(timeout=-1)
    with pytest.raises(TypeError):
        await barrier.enter(timeout="0")  # type: ignore[arg-type]
    with pytest.raises(aetcd.InvalidArgumentError):
        await barrier.leave(timeout=float("nan"))


# -- Queue -----------------------------------------------------------------------------------


async def test_queue_fifo(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    queue = Queue(etcd_client, etcd_prefix + "q")
    for i in range(10):
        key = await queue.enqueue(f"item-{i}")
        assert key.startswith(queue.prefix)
    got = [await queue.dequeue() for _ in range(10)]
    assert got == [f"item-{i}".encode() for i in range(10)]
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_dequeue_blocks_until_enqueue(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    queue = Queue(etcd_client, etcd_prefix + "q")
    consumer = await blocked(queue.dequeue())
    await Queue(etcd_client, etcd_prefix + "q").enqueue("hello")
    async with asyncio.timeout(10):
        assert await consumer == b"hello"


async def test_concurrent_consumers_get_each_item_once(
    etcd_client: aetcd.Client, etcd_prefix: str, etcd_server: object
) -> None:
    n_items, n_consumers = 60, 5
    got: list[list[bytes]] = [[] for _ in range(n_consumers)]
    async with aetcd.Client(etcd_server.endpoint) as other:  # type: ignore[attr-defined]
        clients = [etcd_client, other]

        async def consume(i: int) -> None:
            queue = Queue(clients[i % 2], etcd_prefix + "q")
            while True:
                value = await queue.dequeue()
                if value == b"stop":
                    return
                got[i].append(value)

        async def produce() -> None:
            queue = Queue(etcd_client, etcd_prefix + "q")
            for j in range(n_items):
                await queue.enqueue(str(j))
                if j % 7 == 0:
                    await asyncio.sleep(0.01)
            for _ in range(n_consumers):
                await queue.enqueue("stop")

        async with asyncio.timeout(40), asyncio.TaskGroup() as tg:
            for i in range(n_consumers):
                tg.create_task(consume(i))
            tg.create_task(produce())
    everything = sorted(int(v) for items in got for v in items)
    assert everything == list(range(n_items)), "an item was lost or delivered twice"
    for items in got:  # each consumer sees items in queue order
        assert [int(v) for v in items] == sorted(int(v) for v in items)
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_cancelled_dequeue_loses_nothing(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    queue = Queue(etcd_client, etcd_prefix + "q")
    for _ in range(3):  # cancelled while waiting on an empty queue
        consumer = await blocked(queue.dequeue())
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
    assert await keys_under(etcd_client, etcd_prefix) == []
    items = [str(i).encode() for i in range(8)]
    for item in items:
        await queue.enqueue(item)
    # Cancel consumers at many points of their work, including just as a claim
    # completes (the item is then put back): nothing is lost or duplicated.
    rng = random.Random(7)
    delivered: list[bytes] = []
    for _ in range(60):
        task = asyncio.create_task(queue.dequeue())
        await asyncio.sleep(rng.random() * 0.004)
        task.cancel()
        result = (await asyncio.gather(task, return_exceptions=True))[0]
        if isinstance(result, bytes):
            delivered.append(result)
    while len(delivered) < len(items):
        async with asyncio.timeout(5):
            delivered.append(await queue.dequeue())
    assert sorted(delivered) == sorted(items)
    assert await keys_under(etcd_client, etcd_prefix) == []


async def test_priority_queue(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    queue = PriorityQueue(etcd_client, etcd_prefix + "pq")
    for value, priority in [("low1", 9), ("high1", 1), ("mid", 5), ("high2", 1), ("low2", 9)]:
        await queue.enqueue(value, priority)
    keys = await keys_under(etcd_client, etcd_prefix + "pq/")
    assert (etcd_prefix + "pq/00001/0000000000000001").encode() in keys
    got = [await queue.dequeue() for _ in range(5)]
    assert got == [b"high1", b"high2", b"mid", b"low1", b"low2"]
    consumer = await blocked(queue.dequeue())
    await queue.enqueue("late", 3)
    async with asyncio.timeout(10):
        assert await consumer == b"late"
    with pytest.raises(aetcd.InvalidArgumentError):
        await queue.enqueue("x", 70000)


async def test_zero_timeouts_bound_only_the_waiting(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    """timeout=0 passes whatever is free or ready (the round trips are not the
    wait) and gives up at once otherwise, leaving no key behind."""
    p = etcd_prefix
    rw = RWMutex(etcd_client, p + "rw")
    async with rw.read_lock(timeout=0), rw.read_lock(timeout=0):  # readers share it
        with pytest.raises(aetcd.LockTimeoutError):
            await rw.write_lock().acquire(timeout=0)
        assert (await etcd_client.get(p + "rw/", prefix=True)).count == 2
    async with rw.write_lock(timeout=0):
        with pytest.raises(aetcd.LockTimeoutError):
            await rw.read_lock().acquire(timeout=0)
        assert (await etcd_client.get(p + "rw/", prefix=True)).count == 1

    barrier = Barrier(etcd_client, p + "barrier")
    await barrier.wait(timeout=0)  # not held
    async with barrier:
        with pytest.raises(TimeoutError):
            await barrier.wait(timeout=0)
    await barrier.wait(timeout=0)

    for queue in (Queue(etcd_client, p + "q"), PriorityQueue(etcd_client, p + "pq")):
        with pytest.raises(TimeoutError):
            await queue.dequeue(timeout=0)
        if isinstance(queue, Queue):
            await queue.enqueue("item")
        else:
            await queue.enqueue("item", priority=1)
        assert await queue.dequeue(timeout=0) == b"item"
        with pytest.raises(TimeoutError):
            await queue.dequeue(timeout=0.05)
    with pytest.raises(aetcd.InvalidArgumentError):
        await Queue(etcd_client, p + "q").dequeue(timeout=-1)
    with pytest.raises(TypeError):
        await barrier.wait(timeout="0")  # type: ignore[arg-type]
