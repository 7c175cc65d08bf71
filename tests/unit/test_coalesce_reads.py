"""Read coalescing against a fake transport: batches, limits, errors, cancellation.

The coalescer builds each batch's TxnRequest from the reads' fields, sizes a
batch only when a cheap upper bound says it might exceed the limits, and turns
the TxnResponse into GetResult views that share the txn's header; these tests
pin down what callers see either way.
"""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from aetcd import ClientClosedError, CompactedError, GetResult, UnavailableError
from aetcd._channel import Transport
from aetcd._coalesce import Coalescer
from aetcd._pb import kv_pb2, rpc_pb2
from aetcd._wire.decode import get_view

HEADER = rpc_pb2.ResponseHeader(cluster_id=11, member_id=22, revision=33, raft_term=44)


def _kv(key: bytes) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(key=key, value=b"v:" + key, create_revision=2, mod_revision=3, version=1)


class FakeTransport:
    """What Coalescer uses of aetcd._channel.Transport, answering from memory."""

    deadline = Transport.deadline  # the real timeout normalisation (reads self.config)

    def __init__(self, *, max_txn_ops: int = 128, max_request_bytes: int = 1536 * 1024) -> None:
        self.config = SimpleNamespace(
            timeout=5.0, max_txn_ops=max_txn_ops, max_request_bytes=max_request_bytes
        )
        self.kv = SimpleNamespace(Range="Range", Txn="Txn")
        self.calls: list[tuple[str, Any, float | None]] = []
        self.txn_error: BaseException | None = None
        self.bad_keys: set[bytes] = set()
        self.short_txn = False

    def unary(self, method: str, request: Any, timeout: float | None, *, write: bool) -> Any:
        assert write is False
        return self._answer(method, request, timeout)

    async def _answer(self, method: str, request: Any, timeout: float | None) -> Any:
        self.calls.append((method, request, timeout))
        await asyncio.sleep(0)
        if method == "Range":
            if request.key in self.bad_keys:
                raise CompactedError("etcdserver: mvcc: required revision has been compacted")
            resp = rpc_pb2.RangeResponse(header=HEADER, count=1)
            resp.kvs.append(_kv(request.key))
            return resp
        if self.txn_error is not None:
            raise self.txn_error
        txn = rpc_pb2.TxnResponse(header=HEADER, succeeded=True)
        ops = list(request.success)
        if self.short_txn:
            ops = ops[:-1]
        for op in ops:
            # etcd fills only the revision of the header of a txn's op.
            rr = txn.responses.add().response_range
            rr.header.revision = HEADER.revision
            rr.count = 1
            rr.kvs.append(_kv(op.request_range.key))
        return txn


def _result(response: Any) -> GetResult:
    """What KV.get makes of what Coalescer.read gives."""
    return response if type(response) is GetResult else get_view(response)


async def _read_all(c: Coalescer, reads: list[dict[str, Any]]) -> list[Any]:
    # Every read() in one loop turn, as concurrent callers would issue them.
    awaitables = [c.read(fields, None) for fields in reads]
    return await asyncio.gather(*awaitables, return_exceptions=True)


def _txns(t: FakeTransport) -> list[Any]:
    return [req for method, req, _ in t.calls if method == "Txn"]


async def test_one_turn_one_batch_with_the_whole_header() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    keys = [b"k%d" % i for i in range(10)]
    out = await _read_all(c, [{"key": k} for k in keys])
    results = [_result(r) for r in out]
    assert [r.kvs[0].key for r in results] == keys
    assert [r.kvs[0].value for r in results] == [b"v:" + k for k in keys]
    # The first read went alone, at once; the nine others as one txn.
    assert [m for m, _, _ in t.calls] == ["Range", "Txn"]
    assert len(_txns(t)[0].success) == 9
    assert (c.batches_sent, c.requests_coalesced) == (1, 9)
    # Every result has the txn's whole header, as a read of its own would have.
    for r in results:
        assert (r.header.cluster_id, r.header.member_id) == (11, 22)
        assert (r.header.revision, r.header.raft_term) == (33, 44)
        assert r.header == results[0].header
    assert results[1].count == 1 and results[1].more is False


async def test_range_options_reach_the_txn() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    reads = [{"key": b"a"}, {"key": b"p/", "range_end": b"p0", "limit": 5, "keys_only": True}]
    reads.append({"key": b"c", "revision": 7})
    await _read_all(c, reads)
    (txn,) = _txns(t)
    sent = [op.request_range for op in txn.success]
    assert sent[0] == rpc_pb2.RangeRequest(**reads[1])
    assert sent[1] == rpc_pb2.RangeRequest(**reads[2])


async def test_batches_are_bounded_by_max_txn_ops() -> None:
    t = FakeTransport(max_txn_ops=4)
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    keys = [b"k%d" % i for i in range(11)]
    out = await _read_all(c, [{"key": k} for k in keys])
    assert [_result(r).kvs[0].key for r in out] == keys  # each caller its own result
    # 1 alone at once, then 10 as 4 + 4 + 2.
    assert [len(txn.success) for txn in _txns(t)] == [4, 4, 2]


async def test_batches_stay_under_max_request_bytes() -> None:
    limit = 2000
    t = FakeTransport(max_request_bytes=limit)
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    keys = [b"%03d" % i + b"k" * 300 for i in range(13)]
    reads: list[dict[str, Any]] = [{"key": k} for k in keys]
    reads[5]["range_end"] = b"z" * 300
    out = await _read_all(c, reads)
    assert [_result(r).kvs[0].key for r in out] == keys
    # After the first read (alone, at once): the batches in order, as txns (a
    # batch of one goes as a plain Range).
    batches = [
        req if method == "Txn" else rpc_pb2.TxnRequest(success=[{"request_range": req}])
        for method, req, _ in t.calls[1:]
    ]
    assert len(batches) > 1
    assert all(b.ByteSize() <= limit for b in batches)
    assert [op.request_range.key for b in batches for op in b.success] == keys[1:]
    # Nothing was split that did not need to be: no batch plus the next read fits.
    for b, nxt in itertools.pairwise(batches):
        assert b.ByteSize() + nxt.success[0].request_range.ByteSize() + 16 > limit


async def test_a_failed_batch_is_resent_per_read() -> None:
    t = FakeTransport()
    t.txn_error = UnavailableError("etcdserver: request timed out")
    t.bad_keys = {b"k3"}
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    keys = [b"k%d" % i for i in range(6)]
    out = await _read_all(c, [{"key": k} for k in keys])
    assert isinstance(out[3], CompactedError)  # only the faulty read fails
    for i in (0, 1, 2, 4, 5):
        assert _result(out[i]).kvs[0].key == keys[i]
    assert [m for m, _, _ in t.calls].count("Range") == 6


async def test_a_short_txn_answer_leaves_nobody_waiting() -> None:
    t = FakeTransport()
    t.short_txn = True
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    keys = [b"k%d" % i for i in range(5)]
    out = await asyncio.wait_for(_read_all(c, [{"key": k} for k in keys]), 5)
    assert [_result(r).kvs[0].key for r in out] == keys


async def test_a_bad_read_fails_alone() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    reads: list[dict[str, Any]] = [{"key": b"k%d" % i} for i in range(4)]
    reads[2]["limit"] = "many"  # not validated here: the protobuf refuses it
    out = await _read_all(c, reads)
    assert isinstance(out[2], TypeError)
    for i in (0, 1, 3):
        assert _result(out[i]).kvs[0].key == b"k%d" % i


async def test_a_bad_timeout_raises_at_the_call() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    first = c.read({"key": b"a"}, None)
    with pytest.raises(TypeError):
        c.read({"key": b"b"}, "soon")  # type: ignore[arg-type]
    await first
    await asyncio.sleep(0)
    assert len(t.calls) == 1


async def test_the_batch_deadline_is_the_earliest() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    awaitables = [
        c.read({"key": b"a"}, None),
        c.read({"key": b"b"}, None),
        c.read({"key": b"c"}, 0.5),
        c.read({"key": b"d"}, 30),
    ]
    await asyncio.gather(*awaitables)
    ((_, _, timeout),) = [call for call in t.calls if call[0] == "Txn"]
    # 0.5 s left at most (time passes on a loaded box): the 5 s and 30 s ones lost.
    assert timeout is not None and 0 < timeout <= 0.5


async def test_no_deadline_at_all() -> None:
    t = FakeTransport()
    t.config.timeout = None
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    await asyncio.gather(*(c.read({"key": b"k%d" % i}, None) for i in range(3)))
    ((_, _, timeout),) = [call for call in t.calls if call[0] == "Txn"]
    assert timeout is None


async def test_cancelled_reads_are_not_sent() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]

    async def get(key: bytes) -> GetResult:
        return _result(await c.read({"key": key}, None))

    tasks = [asyncio.create_task(get(b"k%d" % i)) for i in range(6)]
    await asyncio.sleep(0)  # every read issued, the batch not sent yet
    tasks[2].cancel()
    tasks[4].cancel()
    out = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(out[2], asyncio.CancelledError) and isinstance(out[4], asyncio.CancelledError)
    for i in (0, 1, 3, 5):
        assert isinstance(out[i], GetResult) and out[i].kvs[0].key == b"k%d" % i
    (txn,) = _txns(t)
    assert [op.request_range.key for op in txn.success] == [b"k1", b"k3", b"k5"]


async def test_close_fails_reads_waiting_for_their_turn() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    first = c.read({"key": b"a"}, None)
    waiting = [c.read({"key": b"k%d" % i}, None) for i in range(3)]
    await c.close()
    for w in waiting:
        with pytest.raises(ClientClosedError):
            await w
    await first
    await asyncio.sleep(0)
    assert [m for m, _, _ in t.calls] == ["Range"]


async def test_callers_of_an_answered_batch_read_again_as_one_batch() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    rounds = 3

    async def reader(key: bytes) -> list[bytes]:
        seen = []
        for _ in range(rounds):
            seen.append(_result(await c.read({"key": key}, None)).kvs[0].key)
        return seen

    keys = [b"k%d" % i for i in range(5)]
    out = await asyncio.gather(*(reader(k) for k in keys))
    assert out == [[k] * rounds for k in keys]
    # Round 1: k0 alone at once, k1-k4 batched. k0's caller comes back alone
    # in its turns: alone again, at once. The callers of the batch all resume
    # in one turn: their next reads form one batch, with no read sent alone
    # ahead of it.
    methods = [(m, len(r.success) if m == "Txn" else r.key) for m, r, _ in t.calls]
    assert sorted(methods) == [("Range", b"k0")] * rounds + [("Txn", 4)] * rounds


async def test_a_lone_read_after_a_burst_goes_at_once() -> None:
    t = FakeTransport()
    c = Coalescer(t, write=False)  # type: ignore[arg-type]
    await asyncio.gather(*(c.read({"key": b"k%d" % i}, None) for i in range(4)))
    for _ in range(3):
        await asyncio.sleep(0)
    t.calls.clear()
    r = c.read({"key": b"x"}, None)
    assert not isinstance(r, asyncio.Future)  # the call itself, not a batch's future
    assert _result(await r).kvs[0].key == b"x"
    assert [m for m, _, _ in t.calls] == ["Range"]
