"""Watch against a real etcd: options, ordering, resume without loss, compaction,
bounded memory, one shared stream, no leaks."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import aetcd
from aetcd import EventType, Op, WatchFilter
from aetcd.testing import EtcdServer

Factory = Callable[..., Awaitable[EtcdServer]]


async def take(watch: aetcd.Watch, n: int, timeout: float = 10.0) -> list[aetcd.Event]:
    out: list[aetcd.Event] = []
    async with asyncio.timeout(timeout):
        async for event in watch:
            out.append(event)
            if len(out) == n:
                break
    return out


async def test_events_in_order_with_prev_kv(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with etcd_client.watch(p, prefix=True, prev_kv=True) as watch:
        # Confirmed at entry: a write right after it cannot be missed.
        first = await etcd_client.put(p + "a", "1")
        await etcd_client.put(p + "a", "2")
        await etcd_client.delete(p + "a")
        events = await take(watch, 3)
    assert [e.type for e in events] == [EventType.PUT, EventType.PUT, EventType.DELETE]
    assert [e.kv.mod_revision for e in events] == [first.header.revision + i for i in range(3)]
    assert events[0].prev_kv is None
    assert events[1].prev_kv is not None and events[1].prev_kv.value == b"1"
    assert events[2].prev_kv is not None and events[2].prev_kv.value == b"2"
    assert events[2].kv.key == (p + "a").encode() and events[2].kv.value == b""
    assert watch.revision == events[-1].kv.mod_revision


async def test_single_key_range_and_from_key(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with (
        etcd_client.watch(p + "b") as one,
        etcd_client.watch(p + "b", range_end=p + "d") as rng,
        etcd_client.watch(p + "c", from_key=True) as frm,
    ):
        for k in "abcde":
            await etcd_client.put(p + k, k)
        assert [e.kv.key[-1:] for e in await take(one, 1)] == [b"b"]
        assert [e.kv.key[-1:] for e in await take(rng, 2)] == [b"b", b"c"]
        assert [e.kv.key[-1:] for e in await take(frm, 3)] == [b"c", b"d", b"e"]


async def test_filters(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with (
        etcd_client.watch(p, prefix=True, filters=[WatchFilter.NOPUT]) as deletes,
        etcd_client.watch(p, prefix=True, filters=[WatchFilter.NODELETE]) as puts,
    ):
        await etcd_client.put(p + "x", "1")
        await etcd_client.delete(p + "x")
        await etcd_client.put(p + "y", "2")
        assert [e.type for e in await take(deletes, 1)] == [EventType.DELETE]
        assert [e.kv.key[-1:] for e in await take(puts, 2)] == [b"x", b"y"]


async def test_history_from_start_revision(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    revs = [(await etcd_client.put(p + "h", str(i))).header.revision for i in range(5)]
    async with etcd_client.watch(p + "h", start_revision=revs[1]) as watch:
        events = await take(watch, 4)
    assert [e.kv.value for e in events] == [b"1", b"2", b"3", b"4"]


async def test_txn_revision_arrives_whole(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with etcd_client.watch(p, prefix=True) as watch:
        await etcd_client.txn(success=[Op.put(f"{p}{i}", "v") for i in range(50)])
        stream = watch.responses()
        batch = await anext(stream)
        await stream.aclose()
    assert len(batch.events) == 50
    assert len({e.kv.mod_revision for e in batch.events}) == 1
    assert batch.header.revision >= batch.events[0].kv.mod_revision


async def test_bare_async_for(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    key = etcd_prefix + "bare"

    async def consume() -> bytes:
        async for event in etcd_client.watch(key):
            return event.kv.value
        raise AssertionError("watch ended")

    task = asyncio.create_task(consume())
    for _ in range(100):  # the watch confirms asynchronously; keep writing until seen
        await etcd_client.put(key, "seen")
        done, _ = await asyncio.wait({task}, timeout=0.05)
        if done:
            break
    assert await task == b"seen"


async def test_empty_key_rejected_locally(etcd_client: aetcd.Client) -> None:
    with pytest.raises(aetcd.EmptyKeyError):
        etcd_client.watch("")
    with pytest.raises(TypeError):
        etcd_client.watch("k", filters=["NOPUT"])  # type: ignore[list-item]
    with pytest.raises(aetcd.InvalidArgumentError):
        etcd_client.watch("k", start_revision=-1)


async def test_compacted_start_revision(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        first = await client.put("k", "1")
        for i in range(3):
            last = await client.put("k", str(i))
        await client.compact(last.header.revision)
        async with client.watch("k", start_revision=first.header.revision) as watch:
            with pytest.raises(aetcd.CompactedError) as info:
                await take(watch, 1)
        assert info.value.compact_revision == last.header.revision
        assert info.value.code is None or info.value.code.name == "OUT_OF_RANGE"


async def test_compacted_watch_is_cancelled_on_server(etcd_server_factory: Factory) -> None:
    """etcd keeps a compacted watcher until it is cancelled: each watch ended by
    CompactedError must be cancelled (once), leaving the other watches alone."""
    server = await etcd_server_factory()

    async def watchers(expected: int) -> float:
        for _ in range(50):
            count = (await server.metrics())["etcd_debugging_mvcc_watcher_total"]
            if count == expected:
                break
            await asyncio.sleep(0.05)
        return count

    async with aetcd.Client(server.endpoint) as client, client.watch("live") as live:
        stream = client._watches._watch_stream
        assert stream is not None
        cancels: list[int] = []
        creates: list[bytes] = []
        send = stream.send

        def spy(request: Any) -> None:
            if request.HasField("cancel_request"):
                cancels.append(request.cancel_request.watch_id)
            if request.HasField("create_request"):
                creates.append(request.create_request.key)
            send(request)

        stream.send = spy  # type: ignore[method-assign]
        first = await client.put("k", "0")
        for i in range(3):
            last = await client.put("k", str(i))
            await client.compact(last.header.revision)
            async with client.watch("k", start_revision=first.header.revision) as watch:
                with pytest.raises(aetcd.CompactedError):
                    await take(watch, 1)
                assert await watchers(1) == 1  # only the live watch is left
        assert len(cancels) == len(set(cancels)) == 3
        assert not stream._cancelling  # every cancel was answered
        put = await client.put("live", "v")
        (event,) = await take(live, 1)
        assert event.kv.mod_revision == put.header.revision
        assert stream.streams_opened == 1
        # A compacted watch still referenced is not re-created by a reconnect.
        dead = client.watch("k", start_revision=first.header.revision)
        with pytest.raises(aetcd.CompactedError):
            await take(dead, 1)
        assert len(cancels) == 4
        creates.clear()
        server.kill()
        await server.restart()
        put = await client.put("live", "w")
        (event,) = await take(live, 1)
        assert event.kv.mod_revision == put.header.revision
        assert stream.streams_opened >= 2
        assert set(creates) == {b"live"} and len(cancels) == 4
        assert await watchers(1) == 1


async def test_watch_refused_by_the_server_raises_and_leaks_nothing(
    etcd_server_factory: Factory,
) -> None:
    """etcd 3.5 cancels a watch for a reason other than compaction only when it
    creates it: a range the user may not read comes back ``created`` and
    ``canceled`` with "etcdserver: permission denied" (v3rpc/watch.go). That is
    a PermissionDeniedError, registers no watcher on the server, and leaves the
    other watches of the stream delivering every event once."""
    server = await etcd_server_factory()

    async def watchers(expected: int) -> float:
        for _ in range(50):
            count = (await server.metrics())["etcd_debugging_mvcc_watcher_total"]
            if count == expected:
                break
            await asyncio.sleep(0.05)
        return count

    async with aetcd.Client(server.endpoint) as admin:
        await admin.user_add("root", "r00t-pw")
        await admin.role_add("root")
        await admin.user_grant_role("root", "root")
        await admin.user_add("alice", "al1ce-pw")
        await admin.role_add("app")
        await admin.role_grant_permission("app", "app/", prefix=True, perm=aetcd.Permission.READ)
        await admin.user_grant_role("alice", "app")
        await admin.auth_enable()
    async with (
        aetcd.Client(server.endpoint, username="root", password="r00t-pw") as root,
        aetcd.Client(server.endpoint, username="alice", password="al1ce-pw") as alice,
        alice.watch("app/", prefix=True) as live,
    ):
        assert await watchers(1) == 1
        stream = alice._watches._watch_stream
        assert stream is not None
        cancels: list[int] = []
        send = stream.send

        def spy(request: Any) -> None:
            if request.HasField("cancel_request"):
                cancels.append(request.cancel_request.watch_id)
            send(request)

        stream.send = spy  # type: ignore[method-assign]
        seen: list[int] = []
        for i in range(3):
            with pytest.raises(aetcd.PermissionDeniedError) as denied:
                async with asyncio.timeout(10), alice.watch("other/", prefix=True) as refused:
                    await take(refused, 1)
            assert denied.value.message == "etcdserver: permission denied"
            assert await watchers(1) == 1  # only the live watch is registered
            put = await root.put("app/k", str(i))
            (event,) = await take(live, 1)
            seen.append(event.kv.mod_revision)
            assert event.kv.mod_revision == put.header.revision
        assert seen == sorted(set(seen))
        # etcd has no watcher to cancel for a refused watch, and would not answer.
        assert cancels == [] and not stream._cancelling


async def test_progress_request_and_notify(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory(
        extra_args=("--experimental-watch-progress-notify-interval=500ms",)
    )
    async with aetcd.Client(server.endpoint) as client:
        async with client.watch("quiet", progress_notify=True) as watch:
            await client.put("other", "x")
            stream = watch.responses()
            async with asyncio.timeout(10):
                response = await anext(stream)
            await stream.aclose()
            assert response.is_progress_notify and response.events == []
            assert response.header.revision >= 2
            # Periodic notifications advance the resume point of a quiet watch.
            assert watch.next_revision == response.header.revision + 1
            await client.request_progress()  # must not break anything on 3.5.1


async def test_one_stream_for_many_watches(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    watches = [etcd_client.watch(f"{p}{i}") for i in range(1000)]
    await asyncio.gather(*(w.start() for w in watches))
    stream = etcd_client._watches._watch_stream
    assert stream is not None and stream.streams_opened == 1
    await etcd_client.txn(success=[Op.put(f"{p}{i}", str(i)) for i in range(100)])
    await etcd_client.txn(success=[Op.put(f"{p}{i}", str(i)) for i in range(100, 200)])
    for i in (0, 99, 100, 199):
        (event,) = await take(watches[i], 1)
        assert event.kv.value == str(i).encode()
    for w in watches:
        await w.cancel()
    assert len(stream._by_id) == 0


async def test_create_cancel_cycles_leak_nothing(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        async with client.watch("warm"):
            pass
        tasks_before = len(asyncio.all_tasks())
        fds_before = len(os.listdir("/proc/self/fd"))
        for i in range(10_000):
            async with client.watch(f"k{i % 7}"):
                pass
        stream = client._watches._watch_stream
        assert stream is not None
        assert len(stream._watches) == 0 and len(stream._by_id) == 0
        assert len(asyncio.all_tasks()) == tasks_before
        assert stream.streams_opened == 1
        # The server agrees: no watcher left once the cancels are processed.
        for _ in range(50):
            metrics = await server.metrics()
            if metrics["etcd_debugging_mvcc_watcher_total"] == 0:
                break
            await asyncio.sleep(0.1)
        assert metrics["etcd_debugging_mvcc_watcher_total"] == 0
        assert metrics["etcd_debugging_mvcc_watch_stream_total"] == 1
        assert len(os.listdir("/proc/self/fd")) <= fds_before


async def test_cancelling_consumer_task_removes_watch(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        started = asyncio.Event()

        async def consumer() -> None:
            async with client.watch("k") as watch:
                started.set()
                async for _ in watch:
                    pass

        task = asyncio.create_task(consumer())
        await started.wait()
        assert (await server.metrics())["etcd_debugging_mvcc_watcher_total"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(50):
            if (await server.metrics())["etcd_debugging_mvcc_watcher_total"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (await server.metrics())["etcd_debugging_mvcc_watcher_total"] == 0


async def test_forgotten_watch_is_cancelled_on_server(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        watch = client.watch("k")
        await watch.start()
        del watch
        gc.collect()
        await client.put("k", "v")  # its event finds no owner: the stream cancels it
        for _ in range(50):
            if (await server.metrics())["etcd_debugging_mvcc_watcher_total"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (await server.metrics())["etcd_debugging_mvcc_watcher_total"] == 0


async def test_close_ends_watch_loudly(etcd_server: Any) -> None:
    client = aetcd.Client(etcd_server.endpoint)
    watch = client.watch("t/closing")
    await watch.start()
    waiter = asyncio.create_task(take(watch, 1))
    await asyncio.sleep(0.05)
    await client.close()
    with pytest.raises(aetcd.ClientClosedError):
        await waiter
    with pytest.raises(aetcd.ClientClosedError):
        async with client.watch("t/closing"):
            pass


async def test_slow_consumer_bounded_memory_no_loss(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory()
    total, per_txn, cap = 50_000, 100, 2_000
    async with aetcd.Client(server.endpoint) as client, aetcd.Client(server.endpoint) as writer:
        slow = client.watch("s/", prefix=True, max_buffer=cap)
        fast = client.watch("f", max_buffer=cap)
        await slow.start()
        await fast.start()
        peak = 0

        async def write() -> None:
            for base in range(0, total, per_txn):
                ops = [Op.put(f"s/{i:06d}", "x" * 16) for i in range(base, base + per_txn)]
                await writer.txn(success=ops)

        write_task = asyncio.create_task(write())
        # Meanwhile the other watch on the same stream is not stalled.
        await asyncio.sleep(0.5)
        for i in range(5):
            await writer.put("f", str(i))
            (event,) = await take(fast, 1, timeout=5)
            assert event.kv.value == str(i).encode()
        await write_task
        seen = 0
        last_rev = 0
        async with asyncio.timeout(120):
            async for event in slow:
                peak = max(peak, slow._buffered_events)
                assert event.kv.key == f"s/{seen:06d}".encode()
                assert event.kv.mod_revision >= last_rev
                last_rev = event.kv.mod_revision
                seen += 1
                if seen % 5_000 == 0:
                    await asyncio.sleep(0.2)  # a consumer that dawdles
                if seen == total:
                    break
        assert seen == total
        # Memory stayed bounded: never more than the cap plus one whole revision.
        assert peak <= cap + per_txn
        assert slow.pauses > 0, "the slow watch was never paused: the test proves nothing"
        await slow.cancel()
        await fast.cancel()


async def test_kill_restart_every_revision_once_in_order(etcd_server_factory: Factory) -> None:
    server = await etcd_server_factory()
    async with (
        aetcd.Client(server.endpoint, timeout=2) as watcher,
        aetcd.Client(server.endpoint, timeout=2) as writer,
    ):
        events: list[aetcd.Event] = []
        async with watcher.watch("r/", prefix=True) as watch:
            stop = asyncio.Event()
            unknown = 0

            async def write() -> None:
                nonlocal unknown
                i = 0
                while not stop.is_set():
                    try:
                        await writer.put(f"r/{i:05d}", str(i))
                    except aetcd.OutcomeUnknownError:
                        unknown += 1
                    except aetcd.EtcdError:
                        await asyncio.sleep(0.05)
                    i += 1
                    await asyncio.sleep(0.002)

            caught_up = asyncio.Event()
            target = [0]

            async def collect() -> None:
                async for event in watch:
                    events.append(event)
                    if target[0] and len(events) >= target[0]:
                        caught_up.set()

            writer_task = asyncio.create_task(write())
            collector = asyncio.create_task(collect())
            for _ in range(2):
                await asyncio.sleep(1.0)
                server.kill()
                await asyncio.sleep(0.3)
                await server.restart()
            await asyncio.sleep(1.0)
            stop.set()
            await writer_task
            final = await writer.get("r/", prefix=True)
            target[0] = final.count
            if len(events) < final.count:
                async with asyncio.timeout(15):
                    await caught_up.wait()
            await asyncio.sleep(0.3)  # anything extra would be a duplicate
            collector.cancel()
        revs = [e.kv.mod_revision for e in events]
        assert revs == sorted(set(revs)), "an event was repeated or reordered"
        assert set(revs) == {kv.mod_revision for kv in final}, "an event was lost"
        stream = watcher._watches._watch_stream
        assert stream is not None and stream.streams_opened >= 3  # it did reconnect
        print(
            f"\nkill/restart x2: {len(events)} events, {unknown} writes with unknown outcome, "
            f"{stream.streams_opened} streams opened"
        )
