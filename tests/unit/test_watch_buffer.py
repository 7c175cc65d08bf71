"""How a watch buffers what its stream reads and delivers it, with no server:
responses are fed to the stream's dispatch as if read from the call.

Covers the paths of ``Watch.__anext__``: a batch of one event (its view built
by the stream task), batches of several events delivered one by one, the two
mixed, progress notifications between them, the defensive resume-point filter,
namespaces, and ``responses()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import aetcd
from aetcd._pb import kv_pb2, rpc_pb2
from aetcd._watch_stream import WatchStream
from aetcd.watch import Watch


def response(
    wid: int, *revisions: int, key: bytes = b"ns/k", header: int = 0
) -> rpc_pb2.WatchResponse:
    events = [
        kv_pb2.Event(
            kv=kv_pb2.KeyValue(
                key=key + b"%d" % r, value=b"v%d" % r, mod_revision=r, create_revision=r, version=1
            )
        )
        for r in revisions
    ]
    h = rpc_pb2.ResponseHeader(revision=header or max(revisions, default=1))
    r = rpc_pb2.WatchResponse(header=h, watch_id=wid, events=events)
    return rpc_pb2.WatchResponse.FromString(r.SerializeToString())  # as read from the wire


def progress(wid: int, revision: int) -> rpc_pb2.WatchResponse:
    return rpc_pb2.WatchResponse(header=rpc_pb2.ResponseHeader(revision=revision), watch_id=wid)


@pytest.fixture
async def fed() -> AsyncIterator[tuple[WatchStream, Watch]]:
    """A watch confirmed at revision 10 on a stream that is never opened."""
    client = aetcd.Client("127.0.0.1:1", namespace="ns/")  # never contacted
    stream = WatchStream(client._t)
    stream._connected = True
    watch = client.watch(b"k", prefix=True)
    watch._loop = asyncio.get_running_loop()
    watch._created = watch._loop.create_future()
    watch._stream = stream
    stream._watches.add(watch)
    stream.create(watch)
    stream._dispatch(
        rpc_pb2.WatchResponse(
            header=rpc_pb2.ResponseHeader(revision=10), watch_id=watch.watch_id, created=True
        )
    )
    assert watch.revision == 10 and watch.next_revision == 11
    yield stream, watch
    stream._connected = False
    await client.close()


async def take(watch: Watch, n: int) -> list[aetcd.Event]:
    async with asyncio.timeout(5):
        return [await anext(watch) for _ in range(n)]


async def test_single_and_multi_event_batches_mixed(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    wid = watch.watch_id
    for r in (
        response(wid, 11),
        response(wid, 12, 12, 12),
        response(wid, 13),
        response(wid, 14, 15),
    ):
        stream._dispatch(r)
    assert watch._buffered_events == 7
    first = await take(watch, 1)
    assert watch.revision == 11 and watch._buffered_events == 6
    rest = await take(watch, 6)
    got = [e.kv.mod_revision for e in [*first, *rest]]
    assert got == [11, 12, 12, 12, 13, 14, 15]
    assert watch.revision == 15 and watch.next_revision == 16
    assert watch._buffered_events == 0
    # A batch delivered to its end is not kept alive by the watch.
    assert watch._batch == () and watch._batch_len == 0
    # Views: the namespace is stripped, prev_kv absent, type PUT.
    e = first[0]
    assert e.kv.key == b"k11" and e.kv.value == b"v11" and e.prev_kv is None
    assert e.type is aetcd.EventType.PUT


async def test_waiting_consumer_gets_single_event(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    consumer = asyncio.create_task(take(watch, 2))
    await asyncio.sleep(0)
    assert len(watch._waiters) == 1
    stream._dispatch(response(watch.watch_id, 11))
    await asyncio.sleep(0)
    stream._dispatch(response(watch.watch_id, 12))
    events = await consumer
    assert [e.kv.mod_revision for e in events] == [11, 12]
    assert watch._waiters == []


async def test_progress_between_batches(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    wid = watch.watch_id
    stream._dispatch(response(wid, 11))
    stream._dispatch(progress(wid, 20))
    stream._dispatch(response(wid, 21, 22))
    assert watch.next_revision == 23
    assert [e.kv.mod_revision for e in await take(watch, 1)] == [11]
    assert watch.revision == 11
    # The progress notification is passed over by the event iterator but moves
    # the delivered revision before the next batch.
    assert [e.kv.mod_revision for e in await take(watch, 2)] == [21, 22]
    assert watch.revision == 22


async def test_nothing_before_the_resume_point(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    wid = watch.watch_id
    stream._dispatch(response(wid, 11))
    stream._dispatch(response(wid, 11))  # a single event again: dropped
    stream._dispatch(response(wid, 10, 11, 12))  # partly old: only 12 is kept
    stream._dispatch(response(wid, 9))  # older than the watch: dropped
    stream._dispatch(response(wid, 13))
    assert watch._buffered_events == 3
    assert [e.kv.mod_revision for e in await take(watch, 3)] == [11, 12, 13]
    assert watch.revision == 13 and not watch._buffer


async def test_responses_after_events(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    wid = watch.watch_id
    stream._dispatch(response(wid, 11, 11))
    stream._dispatch(response(wid, 12))
    stream._dispatch(response(wid, 13, 14))
    await take(watch, 1)
    responses = watch.responses()
    with pytest.raises(RuntimeError):
        await anext(responses)  # the first batch is half delivered
    await take(watch, 1)
    responses = watch.responses()
    async with asyncio.timeout(5):
        one = await anext(responses)
        two = await anext(responses)
    await responses.aclose()
    assert [e.kv.mod_revision for e in one.events] == [12] and one.header.revision == 12
    assert [e.kv.key for e in two.events] == [b"k13", b"k14"]
    assert watch.revision == 14 and watch._buffered_events == 0


async def test_slow_consumer_pauses_then_resumes(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    watch._max_buffer, watch._low_water = 4, 2
    wid = watch.watch_id
    for rev in range(11, 15):
        stream._dispatch(response(wid, rev))
    assert watch._paused and watch.pauses == 1
    assert wid in stream._cancelling  # stopped on the server
    await take(watch, 1)
    assert watch._paused  # 3 left: above the low-water mark
    await take(watch, 1)
    assert not watch._paused and watch.watch_id != wid  # re-created from 15
    assert watch.next_revision == 15
    assert [e.kv.mod_revision for e in await take(watch, 2)] == [13, 14]


async def test_fragments_are_joined_per_incarnation(fed: tuple[WatchStream, Watch]) -> None:
    stream, watch = fed
    wid = watch.watch_id
    first = response(wid, 11, 12)
    first.fragment = True
    stream._dispatch(first)
    assert watch._buffered_events == 0  # nothing delivered before the last part
    stream._dispatch(response(wid, 13))
    assert [e.kv.mod_revision for e in await take(watch, 3)] == [11, 12, 13]
    # A later whole batch takes the fast path again.
    stream._dispatch(response(wid, 14))
    assert [e.kv.mod_revision for e in await take(watch, 1)] == [14]
    assert stream._fragments == {}


async def test_broadcast_progress_reaches_the_watches_of_the_stream(
    fed: tuple[WatchStream, Watch],
) -> None:
    stream, watch = fed
    stream._trust_requested_progress = True
    stream._dispatch(progress(-1, 30))
    assert watch.next_revision == 31
    stream.remove(watch)  # no longer on the stream: not told
    stream._dispatch(progress(-1, 40))
    assert watch.next_revision == 31


async def test_broadcast_progress_skips_a_watch_whose_create_is_unanswered(
    fed: tuple[WatchStream, Watch],
) -> None:
    """etcd sends a new watch's events only after its created response, but a
    requested progress notice as soon as it is due: the notice can arrive
    between the create and its answer, ahead of older events for that watch."""
    stream, confirmed = fed
    stream._trust_requested_progress = True
    client = aetcd.Client("127.0.0.1:1", namespace="ns/")  # never contacted
    try:
        late = client.watch(b"j", prefix=True, start_revision=5)
        late._loop = asyncio.get_running_loop()
        late._created = late._loop.create_future()
        late._stream = stream
        stream._watches.add(late)
        stream.create(late)
        stream._dispatch(progress(-1, 30))  # overtakes the answer to the create
        assert confirmed.next_revision == 31
        assert late.next_revision == 5
        stream._dispatch(
            rpc_pb2.WatchResponse(
                header=rpc_pb2.ResponseHeader(revision=30), watch_id=late.watch_id, created=True
            )
        )
        stream._dispatch(response(late.watch_id, 5, 6, key=b"ns/j", header=30))
        assert [e.kv.mod_revision for e in await take(late, 2)] == [5, 6]
        stream._dispatch(progress(-1, 40))  # answered now: told like the others
        assert late.next_revision == 41
    finally:
        stream.remove(late)
        await client.close()
