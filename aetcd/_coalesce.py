"""Request coalescing: many concurrent requests sent as one read-only (or write) Txn.

Every gRPC call costs the client and the server far more than the work it
carries; under concurrency, requests issued in the same event-loop turn can
share one call. Reads coalesce by default; writes only when asked
(``Client(coalesce_writes=True)``), because coalesced writes share one revision.

The first read of a turn is sent at once, on its own (so a lone read pays no
delay); the other reads of that turn are sent together, as one Txn, when the
loop gets back to its callbacks. Writes of a turn all wait for that moment, and
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
from typing import Any, Final

from ._channel import Transport
from ._pb import rpc_pb2
from .errors import ClientClosedError, EtcdError, OutcomeUnknownError

# Per-request framing inside a TxnRequest, on top of the request's own size.
_OP_OVERHEAD: Final = 16


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
        self._pending: list[_Pending] = []
        self._keys: set[bytes] = set()
        self._turn_open = False
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
        """Send *request* (a Range, Put or DeleteRange request) and return its response.

        *single* sends one request on its own (the non-coalesced path).
        """
        loop = asyncio.get_running_loop()
        if not self._turn_open:
            self._turn_open = True
            loop.call_soon(self._end_turn)
            if not self._write:
                # First read of this loop turn: no batch to join, go now.
                return await single(request, timeout)
        t = self._t.deadline(timeout)
        future: asyncio.Future[Any] = loop.create_future()
        pending = _Pending(request, future, None if t is None else loop.time() + t)
        if self._write:
            key = request.key
            ranged = isinstance(request, rpc_pb2.DeleteRangeRequest) and bool(request.range_end)
            if ranged or key in self._keys:
                # A txn cannot write one key twice, and a ranged delete could
                # overlap the others: close the batch so far and start a new
                # one; the batches of a turn are sent one after the other, so
                # the writes keep their order.
                self._flush()
            self._keys.add(key)
            self._pending.append(pending)
            if ranged:
                self._flush()
        else:
            self._pending.append(pending)
        return await future

    def _end_turn(self) -> None:
        self._turn_open = False
        self._flush()
        self._tail = None

    def _flush(self) -> None:
        """Send what is pending now, as batches (writes: one batch after the other)."""
        pending, self._pending = self._pending, []
        self._keys = set()
        if not pending:
            return
        loop = asyncio.get_running_loop()
        for batch in self._split(pending):
            if self._write:
                task = loop.create_task(self._send_after(self._tail, batch))
                self._tail = task
            elif len(batch) == 1:
                task = loop.create_task(self._send_alone(batch[0]))
            else:
                task = loop.create_task(self._send_batch(batch))
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

    async def close(self) -> None:
        """Stop the batches in flight; their callers get ClientClosedError."""
        error = ClientClosedError("the client was closed while this request was in flight")
        for p in self._pending:
            if not p.future.done():
                p.future.set_exception(error)
        self._pending = []
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
        t = self._t
        method = t.kv.Range if not self._write else (
            t.kv.Put if isinstance(p.request, rpc_pb2.PutRequest) else t.kv.DeleteRange
        )
        try:
            response = await t.unary(method, p.request, self._remaining(p), write=self._write)
        except BaseException as exc:
            _settle_error(p, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not p.future.done():
            p.future.set_result(response)

    async def _send_batch(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]
        if not live:
            return
        if len(live) == 1:
            await self._send_alone(live[0])
            return
        # RequestOps as constructor arguments: the TxnRequest is built in one
        # protobuf call, copying each request once.
        ops: list[Any]
        if self._write:
            ops = [
                {"request_put": p.request}
                if isinstance(p.request, rpc_pb2.PutRequest)
                else {"request_delete_range": p.request}
                for p in live
            ]
        else:
            ops = [{"request_range": p.request} for p in live]
        timeout = self._batch_timeout(live)
        t = self._t
        self.batches_sent += 1
        self.requests_coalesced += len(live)
        try:
            request = rpc_pb2.TxnRequest(success=ops)
            txn = await t.unary(t.kv.Txn, request, timeout, write=self._write)
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
                _settle_error(p, exc)
            raise
        header = txn.header
        for p, op in zip(live, txn.responses, strict=True):
            if p.future.done():
                continue
            which = op.WhichOneof("response")
            if which == "response_range":
                response: Any = op.response_range
            elif which == "response_put":
                response = op.response_put
            else:
                response = op.response_delete_range
            # etcd fills only the revision of a txn op's header: give each the
            # txn's whole header, as a request of its own would have had.
            response.header.CopyFrom(header)
            p.future.set_result(response)

    def _remaining(self, p: _Pending) -> float | None:
        if p.deadline is None:
            return None
        return max(p.deadline - asyncio.get_running_loop().time(), 0.001)

    def _batch_timeout(self, batch: list[_Pending]) -> float | None:
        # The earliest deadline of the batch: no caller waits past its own. (A
        # read batch that times out is re-sent per read, each with what is left
        # of its own deadline.)
        deadlines = [p.deadline for p in batch if p.deadline is not None]
        if not deadlines:
            return None
        return max(min(deadlines) - asyncio.get_running_loop().time(), 0.001)


def _copy_error(exc: OutcomeUnknownError) -> OutcomeUnknownError:
    copy = type(exc)(exc.message, code=exc.code)
    copy.__cause__ = exc.__cause__
    return copy


def _settle_error(p: _Pending, exc: BaseException) -> None:
    if p.future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        # Only close() cancels our tasks.
        p.future.set_exception(ClientClosedError("the client was closed"))
    else:
        p.future.set_exception(exc)
