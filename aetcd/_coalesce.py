"""Request coalescing: many concurrent requests sent as one read-only (or write) Txn.

Every gRPC call costs the client and the server far more than the work it
carries; under concurrency, requests issued in the same event-loop turn can
share one call. Reads coalesce by default; writes only when asked
(``Client(coalesce_writes=True)``), because coalesced writes share one revision.

The first read of a turn is sent at once, on its own (so a lone read pays no
delay); the other reads of that turn are sent together, as one Txn, when the
loop gets back to its callbacks. One exception: in the turn in which the
callers of a batch just answered resume, their next reads are to be expected,
so the first read of that turn joins them rather than costing an RPC of its
own (under steady concurrent load, that lone RPC per batch, and the chains of
lone reads it started, cost about a third of the client's CPU: get64 in
BENCHMARKS.md). Writes of a turn all wait for that moment, and
when one turn needs several write batches they are sent one after the other,
so writes to the same key keep the order they were issued in.

Correctness rules:

* A batch holds at most ``max_txn_ops`` requests and stays under
  ``max_request_bytes``; larger bursts become several batches.
* Read batches: if the Txn fails, each read is re-sent on its own, so each
  caller gets its own result or its own error.
* Write batches never hold the same key twice. If the server *rejected* the
  batch (provably not applied: an etcd error that is not about the outcome),
  each write is re-sent on its own, so only the faulty one fails. If the batch's
  outcome is unknown, every write of it fails with
  :class:`aetcd.OutcomeUnknownError`: nothing is retried silently.
* A caller cancelled while its request is batched just stops waiting; a
  cancelled write may still be applied, exactly as with a cancelled RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

from ._channel import Transport, not_sent
from ._wire import messages as pb
from ._wire.decode import get_view, header_view
from .errors import ClientClosedError, EtcdError, OutcomeUnknownError

# Per-request framing inside a TxnRequest, on top of the request's own size.
_OP_OVERHEAD: Final = 16
# The most a RangeRequest's fields other than key and range_end can add to its
# size: 11 int or bool fields of at most 1 tag byte + a 10-byte varint each,
# plus the tags and length prefixes (<= 6 bytes each) of key and range_end.
_RANGE_FIXED_MAX: Final = 11 * 11 + 2 * 6

_RangeRequest = pb.RangeRequest
_TxnRequest = pb.TxnRequest
_get_running_loop = asyncio.get_running_loop

#: A read waiting for its batch: (RangeRequest fields, future, deadline or None).
#: A tuple, not an object: one allocation and no __init__ frame per read.
_Read: TypeAlias = tuple[dict[str, Any], "asyncio.Future[Any]", float | None]


class _Pending:
    __slots__ = ("deadline", "future", "request", "size")

    def __init__(self, request: Any, future: asyncio.Future[Any], deadline: float | None) -> None:
        self.request = request
        self.future = future
        self.deadline = deadline
        self.size = 0


class Coalescer:
    """Batches one kind of request (``kind``: "range", "put" or "delete_range").

    Owns the tasks that send its batches; :meth:`close` cancels them.
    """

    def __init__(self, transport: Transport, *, write: bool) -> None:
        self._t = transport
        self._write = write
        self._pending: list[_Pending] = []  # writes
        self._reads: list[_Read] = []  # reads
        #: an upper bound of the TxnRequest size of self._reads (see read())
        self._read_bytes = 0
        self._keys: set[bytes] = set()
        self._turn_open = False
        #: nonzero while the callers of a batch of reads just answered resume
        self._burst = 0
        self._loop: Any = None  # the running loop, set when a turn of reads opens
        self._tail: asyncio.Task[None] | None = None  # last write batch of this turn
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_sent = 0
        self.requests_coalesced = 0

    # -- entry point -------------------------------------------------------------------

    async def call(
        self,
        request: Any,
        timeout: float | None,
        single: Callable[[Any, float | None], Awaitable[Any]],
    ) -> Any:
        """Send *request* (a Put or DeleteRange request; a write coalescer
        only) and return its response.

        *single* sends one request on its own (the non-coalesced path).
        """
        loop = asyncio.get_running_loop()
        if not self._turn_open:
            self._turn_open = True
            loop.call_soon(self._end_turn)
        t = self._t.deadline(timeout)
        future: asyncio.Future[Any] = loop.create_future()
        pending = _Pending(request, future, None if t is None else loop.time() + t)
        key = request.key
        ranged = isinstance(request, pb.DeleteRangeRequest) and bool(request.range_end)
        if ranged or key in self._keys:
            # A txn cannot write one key twice, and a ranged delete could
            # overlap the others: close the batch so far and start a new one;
            # the batches of a turn are sent one after the other, so the
            # writes keep their order.
            self._flush()
        self._keys.add(key)
        self._pending.append(pending)
        if ranged:
            self._flush()
        return await future

    def read(self, fields: dict[str, Any], timeout: float | None) -> Awaitable[Any]:
        """Read with the RangeRequest *fields* (a read coalescer only).

        A plain function returning what to await: the first read of a loop turn
        is sent at once, on its own, and its awaitable gives the
        ``RangeResponse``; a later read of the turn gets a future that gives its
        :class:`aetcd.GetResult` once its batch is answered.
        """
        t = self._t
        if not self._turn_open:
            self._turn_open = True
            # (asyncio.get_running_loop() costs ~0.2 us: once per turn.)
            self._loop = loop = _get_running_loop()
            loop.call_soon(self._end_turn)
            if not self._burst:
                # First read of this loop turn: no batch to join, go now.
                return t.unary(t.kv.Range, _RangeRequest(**fields), timeout, write=False)
            # The callers of a batch just answered are resuming in this turn:
            # their next reads are coming, join them.
        seconds = t.deadline(timeout)
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()
        self._reads.append((fields, future, None if seconds is None else loop.time() + seconds))
        end = fields.get("range_end")
        self._read_bytes += (
            len(fields["key"]) + (0 if end is None else len(end)) + _RANGE_FIXED_MAX + _OP_OVERHEAD
        )
        return future

    def _end_turn(self) -> None:
        self._turn_open = False
        if self._write:
            self._flush()
            self._tail = None
        else:
            self._flush_reads()

    def _flush(self) -> None:
        """Send the writes pending now, as batches, one batch after the other."""
        pending, self._pending = self._pending, []
        self._keys = set()
        if not pending:
            return
        loop = asyncio.get_running_loop()
        for batch in self._split(pending):
            task = loop.create_task(self._send_after(self._tail, batch))
            self._tail = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_after(self, previous: asyncio.Task[None] | None, batch: list[_Pending]) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if len(batch) == 1:
            await self._send_alone(batch[0])
        else:
            await self._send_batch(batch)

    def _split(self, pending: list[_Pending]) -> list[list[_Pending]]:
        max_ops = self._t.config.max_txn_ops
        max_bytes = self._t.config.max_request_bytes
        batches: list[list[_Pending]] = []
        batch: list[_Pending] = []
        size = 0
        for p in pending:
            p.size = p.request.ByteSize() + _OP_OVERHEAD
            if batch and (len(batch) >= max_ops or size + p.size > max_bytes):
                batches.append(batch)
                batch, size = [], 0
            batch.append(p)
            size += p.size
        if batch:
            batches.append(batch)
        return batches

    def _flush_reads(self) -> None:
        """Send the reads of this turn: one batch, unless they exceed the limits."""
        reads, self._reads = self._reads, []
        bound, self._read_bytes = self._read_bytes, 0
        if not reads:
            return
        config = self._t.config
        if len(reads) == 1:
            batches = [reads]
        elif len(reads) <= config.max_txn_ops and bound <= config.max_request_bytes:
            batches = [reads]  # the common case: no need to size each read
        else:
            batches = self._split_reads(reads, config.max_txn_ops, config.max_request_bytes)
        loop = _get_running_loop()
        for batch in batches:
            if len(batch) == 1:
                task = loop.create_task(self._read_alone(batch[0]))
            else:
                task = loop.create_task(self._send_reads(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _split_reads(reads: list[_Read], max_ops: int, max_bytes: int) -> list[list[_Read]]:
        batches: list[list[_Read]] = []
        batch: list[_Read] = []
        size = 0
        for read in reads:
            try:
                n = _RangeRequest(**read[0]).ByteSize() + _OP_OVERHEAD
            except Exception:
                n = 0  # sent alone later, where the error reaches its caller
            if batch and (len(batch) >= max_ops or size + n > max_bytes):
                batches.append(batch)
                batch, size = [], 0
            batch.append(read)
            size += n
        if batch:
            batches.append(batch)
        return batches

    async def _read_alone(self, read: _Read) -> None:
        fields, future, deadline = read
        if future.done():
            return
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            future.set_exception(not_sent(False, _LATE))
            return
        t = self._t
        try:
            request = _RangeRequest(**fields)
            response = await t.unary(t.kv.Range, request, remaining, write=False)
        except BaseException as exc:
            _settle_future(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not future.done():
            future.set_result(get_view(response))

    async def _send_reads(self, batch: list[_Read]) -> None:
        now = _get_running_loop().time()
        live = [r for r in batch if not r[1].done() and not _expired(r[1], r[2], now, False)]
        if len(live) < 2:
            if live:
                await self._read_alone(live[0])
            return
        # The earliest deadline of the batch: no caller waits past its own. (A
        # batch that fails, timing out included, is re-sent per read, each with
        # what is left of its own deadline.)
        deadlines = [r[2] for r in live if r[2] is not None]
        timeout = min(deadlines) - now if deadlines else None
        t = self._t
        try:
            # One protobuf call from the fields: each RangeRequest is built
            # once, in place, and never copied.
            ops: list[Any] = [{"request_range": r[0]} for r in live]
            request = _TxnRequest(success=ops)
        except Exception:
            # Cannot happen with validated fields; if it does, only the faulty
            # read should fail.
            await asyncio.gather(*(self._read_alone(r) for r in live))
            return
        self.batches_sent += 1
        self.requests_coalesced += len(live)
        try:
            txn = await t.unary(t.kv.Txn, request, timeout, write=False)
        except EtcdError:
            # Reads have no unknown outcome: let each read get its own answer
            # (only a faulty one fails; a timed-out batch is retried per read).
            await asyncio.gather(*(self._read_alone(r) for r in live))
            return
        except BaseException as exc:
            for r in live:
                _settle_future(r[1], exc)
            raise
        # etcd fills only the revision of a txn op's header: each result gets
        # the txn's whole header (one view shared by the batch), as a request
        # of its own would have had.
        responses = txn.responses
        if len(responses) != len(live):  # not from a sane server; never leave a caller waiting
            await asyncio.gather(*(self._read_alone(r) for r in live))
            return
        header = header_view(txn.header)
        views = [get_view(op.response_range, header) for op in responses]
        for r, view in zip(live, views, strict=True):
            future = r[1]
            if not future.done():
                future.set_result(view)
        # The callers resume in the next loop turn (each future schedules its
        # caller) and typically read again: until the end of that turn, the
        # first read of a turn joins the batch instead of going alone. (The
        # callback runs right after those callers; a later batch answered
        # before it runs extends the burst to its own callers.)
        self._burst += 1
        _get_running_loop().call_soon(self._end_burst, self._burst)

    def _end_burst(self, burst: int) -> None:
        if burst == self._burst:
            self._burst = 0

    async def close(self) -> None:
        """Stop the batches in flight; their callers get ClientClosedError."""
        error = ClientClosedError("the client was closed while this request was in flight")
        for p in self._pending:
            if not p.future.done():
                p.future.set_exception(error)
        self._pending = []
        for r in self._reads:
            if not r[1].done():
                r[1].set_exception(error)
        self._reads = []
        self._read_bytes = 0
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- sending -----------------------------------------------------------------------

    async def _send_alone(self, p: _Pending) -> None:
        if p.future.done():
            return
        remaining = _remaining(p.deadline)
        if remaining is not None and remaining <= 0:
            p.future.set_exception(not_sent(True, _LATE))
            return
        t = self._t
        method = t.kv.Put if isinstance(p.request, pb.PutRequest) else t.kv.DeleteRange
        try:
            response = await t.unary(method, p.request, remaining, write=True)
        except BaseException as exc:
            _settle_future(p.future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not p.future.done():
            p.future.set_result(response)

    async def _send_batch(self, batch: list[_Pending]) -> None:
        now = _get_running_loop().time()
        live = [
            p
            for p in batch
            if not p.future.done() and not _expired(p.future, p.deadline, now, True)
        ]
        if not live:
            return
        if len(live) == 1:
            await self._send_alone(live[0])
            return
        # RequestOps as constructor arguments: the TxnRequest is built in one
        # protobuf call, copying each request once.
        ops: list[Any] = [
            {"request_put": p.request}
            if isinstance(p.request, pb.PutRequest)
            else {"request_delete_range": p.request}
            for p in live
        ]
        # The earliest deadline of the batch: no caller waits past its own.
        deadlines = [p.deadline for p in live if p.deadline is not None]
        timeout = min(deadlines) - now if deadlines else None
        t = self._t
        self.batches_sent += 1
        self.requests_coalesced += len(live)
        try:
            request = pb.TxnRequest(success=ops)
            txn = await t.unary(t.kv.Txn, request, timeout, write=True)
        except OutcomeUnknownError as exc:
            # The batch may or may not have been applied: so may each write.
            for p in live:
                if not p.future.done():
                    p.future.set_exception(_copy_error(exc))
            return
        except EtcdError:
            # Rejected as a whole, provably not applied: let each request get its
            # own answer (only a faulty one fails).
            await asyncio.gather(*(self._send_alone(p) for p in live))
            return
        except BaseException as exc:
            for p in live:
                _settle_future(p.future, exc)
            raise
        header = txn.header
        for p, op in zip(live, txn.responses, strict=True):
            if p.future.done():
                continue
            if op.WhichOneof("response") == "response_put":
                response: Any = op.response_put
            else:
                response = op.response_delete_range
            # etcd fills only the revision of a txn op's header: give each the
            # txn's whole header, as a request of its own would have had.
            response.header.CopyFrom(header)
            p.future.set_result(response)


def _copy_error(exc: OutcomeUnknownError) -> OutcomeUnknownError:
    copy = type(exc)(exc.message, code=exc.code)
    copy.__cause__ = exc.__cause__
    return copy


def _settle_future(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        # Only close() cancels our tasks.
        future.set_exception(ClientClosedError("the client was closed"))
    else:
        future.set_exception(exc)


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until *deadline* (<= 0: passed), or None for no deadline."""
    if deadline is None:
        return None
    return deadline - _get_running_loop().time()


_LATE: Final = "the deadline passed while the request waited for its batch"


def _expired(future: asyncio.Future[Any], deadline: float | None, now: float, write: bool) -> bool:
    """Fail *future* if its *deadline* has passed by *now*: such a request is not sent."""
    if deadline is None or deadline > now:
        return False
    future.set_exception(not_sent(write, _LATE))
    return True
