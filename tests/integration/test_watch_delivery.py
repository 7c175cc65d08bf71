"""How a watch hands what the stream task read to its consumers, against a real
etcd: waiting consumers (cancelled ones, several at once), batches delivered
event by event or whole, fragmented responses, forgotten watches."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import aetcd
from aetcd import Op
from aetcd.testing import EtcdServer

Factory = Callable[..., Awaitable[EtcdServer]]


async def test_cancelled_waits_leave_nothing_behind(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    key = etcd_prefix + "quiet"
    async with etcd_client.watch(key) as watch:
        # A consumer polling a quiet watch with a timeout: each wait is cancelled.
        for _ in range(200):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.001):
                    await anext(watch)
        assert watch._waiters == []  # no future per cancelled wait piles up
        put = await etcd_client.put(key, "v")
        async with asyncio.timeout(10):
            event = await anext(watch)
    assert event.kv.value == b"v" and event.kv.mod_revision == put.header.revision


async def test_several_consumers_of_one_watch(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    watch = etcd_client.watch(p, prefix=True)
    await watch.start()
    seen: list[list[int]] = [[], [], []]
    writes = 60
    all_seen = asyncio.Event()

    async def consume(out: list[int]) -> None:
        async for event in watch:
            out.append(event.kv.mod_revision)
            if sum(map(len, seen)) == writes:
                all_seen.set()

    consumers = [asyncio.create_task(consume(out)) for out in seen]
    await asyncio.sleep(0)  # every consumer is waiting before the first write
    revisions = [(await etcd_client.put(f"{p}{i}", "v")).header.revision for i in range(writes)]
    async with asyncio.timeout(10):
        await all_seen.wait()
    await watch.cancel()
    # Every waiting consumer is woken by the end of the watch: none hangs.
    async with asyncio.timeout(10):
        await asyncio.gather(*consumers)
    delivered = sorted(r for out in seen for r in out)
    assert delivered == revisions  # each event to exactly one consumer
    for out in seen:
        assert out == sorted(out)


async def test_batch_is_delivered_event_by_event(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    p = etcd_prefix
    async with etcd_client.watch(p, prefix=True) as watch:
        res = await etcd_client.txn(success=[Op.put(f"{p}{i}", str(i)) for i in range(3)])
        async with asyncio.timeout(10):
            first = await anext(watch)
            # The rest of that revision is still to be delivered one by one.
            with pytest.raises(RuntimeError):
                await anext(watch.responses())
            rest = [await anext(watch), await anext(watch)]
    assert [e.kv.value for e in [first, *rest]] == [b"0", b"1", b"2"]
    assert {e.kv.mod_revision for e in [first, *rest]} == {res.header.revision}
    assert watch.revision == res.header.revision


async def test_fragmented_response_arrives_whole(etcd_server_factory: Factory) -> None:
    # A response larger than the server's limit (--max-request-bytes plus
    # 512 KiB for a watch) comes in fragments, as the watch asks: delivered
    # as one response, in order.
    server = await etcd_server_factory(extra_args=("--max-request-bytes=65536",))
    n = 40  # 40 x 20 kB: two fragments
    async with aetcd.Client(server.endpoint) as client:
        revisions = [(await client.put(f"big/{i}", "x" * 20_000)).header.revision for i in range(n)]
        stream = client._watches._watch_stream_for()
        fragments = 0
        dispatch = stream._dispatch

        def spy(r: Any) -> None:
            nonlocal fragments
            fragments += r.fragment
            dispatch(r)

        stream._dispatch = spy  # type: ignore[method-assign]
        async with client.watch("big/", prefix=True, start_revision=revisions[0]) as watch:
            responses = watch.responses()
            async with asyncio.timeout(10):
                response = await anext(responses)
            await responses.aclose()
        assert fragments >= 1, "the server did not fragment: the test proves nothing"
        assert [e.kv.mod_revision for e in response.events] == revisions
        assert watch.revision == revisions[-1]
        async with client.watch("big/", prefix=True, start_revision=revisions[0]) as watch:
            async with asyncio.timeout(10):
                events = [await anext(watch) for _ in revisions]
        assert [e.kv.key for e in events] == [f"big/{i}".encode() for i in range(n)]


async def test_forgotten_watch_leaves_no_entry(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    watch = etcd_client.watch(etcd_prefix + "k")
    await watch.start()
    stream = etcd_client._watches._watch_stream
    assert stream is not None
    before = len(stream._by_id)
    assert before >= 1
    del watch
    gc.collect()
    assert len(stream._by_id) == before - 1
