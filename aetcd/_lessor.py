"""The keep-alive scheduler beneath :class:`aetcd.Lease`: one LeaseKeepAlive stream per client.

:class:`KeepAlive` (Go's ``lessor``) renews every kept lease on its TTL/3
grid over one shared stream, reopens the stream when it breaks, and sweeps
for leases whose TTL ran out without a renewal. Each lease has a private
:class:`Kept` record here; the scheduler tells the lease's handle about
renewals and losses only through the record's callbacks, and knows nothing
of ``aetcd.lease``.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import math
import time
from collections.abc import Callable
from typing import Final, Generic, TypeAlias, TypeVar

import grpc
import grpc.aio

from ._channel import Transport
from ._wire import messages as pb
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    EtcdError,
    InvalidArgumentError,
    LeaseLostError,
    PermissionDeniedError,
    _from_grpc,
)

_log = logging.getLogger("aetcd")

_RECONNECT_WAIT: Final = 0.5  # before reopening a broken stream (Go: retryConnWait)
_DEADLINE_CHECK: Final = 1.0  # period of the deadline sweep (Go: deadlineLoop)
_STARTUP_RETRY: Final = 0.2  # etcd < 3.5.3 may answer TTL 0 right after a grant (#13932)
_IDLE_LINGER: Final = 5.0  # keep the stream this long after the last lease leaves
_HANG_UP_GRACE: Final = 1.0  # for the server to end a half-closed stream cleanly

StreamCall: TypeAlias = grpc.aio.StreamStreamCall[
    pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse
]


H = TypeVar("H")


def _next_tick(now: float, period: float) -> float:
    """The tick of the *period* grid in ``(now, now + period]``: the latest at or before
    ``now + period``.

    Renewing there is never later than *period* after *now*, and every lease
    with the same period lands on the same ticks (the floats are identical).
    """
    tick = math.floor((now + period) / period) * period
    if tick <= now:  # rounding at a tick
        return now + period
    return min(tick, now + period)


def _needs_token(exc: EtcdError) -> bool:
    # errors.py marks exactly the "fresh token helps" auth errors as retryable.
    return isinstance(exc, AuthenticationError) and exc.retryable


class Kept(Generic[H]):
    """The scheduler's record of one kept-alive lease.

    *handle* is what the lease is kept alive for (opaque here). The callbacks
    report to it: ``renewed(at, ttl)`` after each answered keep-alive (*at*:
    ``time.monotonic()``), ``lost(reason, gone)`` when the lease is lost
    (*gone*: the server said it no longer exists), and ``expired()``, asked by
    the deadline sweep, which reports a loss itself and returns True when the
    handle's own estimate says the TTL ran out. The handle stops the keeping
    with :meth:`stop`.
    """

    __slots__ = (
        "confirmed",
        "expired",
        "handle",
        "id",
        "lessor",
        "lost",
        "next",
        "renewed",
        "request",
        "retried",
        "seq",
        "ttl",
    )

    def __init__(
        self,
        id: int,
        ttl: int,
        handle: H,
        *,
        renewed: Callable[[float, int], None],
        lost: Callable[[LeaseLostError, bool], None],
        expired: Callable[[], bool],
    ) -> None:
        self.id = id
        self.ttl = ttl  # the latest TTL the server answered: the renewal period is ttl/3
        self.handle = handle
        self.renewed = renewed
        self.lost = lost
        self.expired = expired
        self.lessor: KeepAlive[H] | None = None  # while kept alive
        self.seq = 0  # only the heap entry carrying the current seq is live
        self.next = -math.inf  # when the live heap entry is due
        self.confirmed = False  # a keep-alive was answered with TTL > 0
        self.retried = False  # the one startup retry on TTL 0 was used
        self.request = pb.LeaseKeepAliveRequest(ID=id)

    def stop(self) -> None:
        """Stop keeping the lease alive (no revoke, no loss reported)."""
        lessor = self.lessor
        if lessor is not None:
            lessor.remove(self)


class KeepAlive(Generic[H]):
    """The one LeaseKeepAlive stream of a client, shared by all its kept-alive leases.

    Created by the first ``client.lease()`` / ``client.keepalive()`` and closed by
    ``client.close()`` (through ``LeaseAPI.aclose``). It owns one
    background task, started when a lease is added and ended when none has been
    left for a few seconds or when the client closes; inside it a TaskGroup runs
    the stream (sender and receiver) and the deadline sweep. A broken stream is
    reopened after 0.5 s; failures reopening cannot fix (permission denied, a
    failed re-authentication, a closed client) mark every current lease lost.
    An unexpected exception marks every lease lost (``lost_reason.__cause__`` is
    the exception), is logged on the ``aetcd`` logger, and ends the task.

    Each kept lease has a :class:`Kept` record here; the lessor reports to
    the lease's handle only through the record's callbacks.

    **A burst of due leases** goes into the outbox, which the sender writes
    back to back (``call.write()``) while the receiver reads the replies
    (``call.read()``): grpc.aio's public stream API only.
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self.leases: dict[int, Kept[H]] = {}
        # (send time, seq, lease id); stale entries (seq != kept.seq) are skipped.
        self._heap: list[tuple[float, int, int]] = []
        self._wake = asyncio.Event()  # the sender must look at the heap again
        self._busy = asyncio.Event()  # there are leases
        self._empty = asyncio.Event()  # there are none
        self._sleep_until = -math.inf  # when the sleeping sender will look again
        self._task: asyncio.Task[None] | None = None
        self._call: StreamCall | None = None  # the current stream
        self._established = False  # the current stream has had an answer
        self._stopping = False  # the current stream is being hung up on purpose
        self._closed = False
        # Per stream: leases due and not yet written.
        self._outbox: collections.deque[Kept[H]] = collections.deque()
        #: Keep-alive streams opened so far (a test hook, and a reconnect counter).
        self.streams_opened = 0
        #: Keep-alive requests sent and replies received, so far.
        self.sent = 0
        self.received = 0

    # -- membership ------------------------------------------------------------------

    def add(self, kept: Kept[H], *, renewed_at: float | None = None) -> Kept[H]:
        """Keep the lease of *kept* alive from now on; returns *kept*.

        A first keep-alive goes out at once, unless *renewed_at* says when the
        lease was last renewed: then on its TTL/3 grid after that. A record
        kept for the same lease id with another handle is reported lost.
        """
        if self._closed:
            raise ClientClosedError("the client is closed; create a new aetcd.Client")
        old = self.leases.get(kept.id)
        if old is not None and old.handle is not kept.handle:
            old.lost(LeaseLostError(f"lease {kept.id:#x} was replaced by a new handle"), False)
        kept.lessor = self
        self.leases[kept.id] = kept
        self._busy.set()
        self._empty.clear()
        if renewed_at is None:
            self._push(kept, time.monotonic())
        else:
            kept.confirmed = True
            self._push(kept, _next_tick(renewed_at, kept.ttl / 3))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="aetcd lease keep-alive")
        return kept

    def remove(self, kept: Kept[H]) -> None:
        """Stop keeping *kept* alive (it is not revoked, and not reported lost)."""
        if self.leases.get(kept.id) is kept:
            del self.leases[kept.id]
            if not self.leases:
                self._busy.clear()
                self._empty.set()
        if kept.lessor is self:
            kept.lessor = None
        kept.seq += 1  # its heap entries are stale now

    def _push(self, kept: Kept[H], when: float) -> None:
        kept.seq += 1
        kept.next = when
        heapq.heappush(self._heap, (when, kept.seq, kept.id))
        if when < self._sleep_until:
            self._wake.set()
        if len(self._heap) > 4 * len(self.leases) + 64:
            self._compact()

    def _compact(self) -> None:
        # Stale entries of removed long-TTL leases would otherwise pile up.
        leases = self.leases
        self._heap[:] = [e for e in self._heap if (x := leases.get(e[2])) and x.seq == e[1]]
        heapq.heapify(self._heap)

    def _fail_all(self, reason: Callable[[], LeaseLostError]) -> None:
        for kept in list(self.leases.values()):
            kept.lost(reason(), False)

    # -- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the background task and mark every lease lost (they are not revoked)."""
        self._closed = True
        task = self._task
        if task is not None:
            await self._hang_up()
            task.cancel()
            await asyncio.wait([task])
        self._fail_all(
            lambda: LeaseLostError("the client was closed; the lease is no longer kept alive")
        )

    async def _run(self) -> None:
        try:
            while True:
                self._stopping = False
                async with asyncio.TaskGroup() as tg:
                    stream = tg.create_task(self._stream_loop())
                    sweep = tg.create_task(self._deadline_loop())
                    await self._until_idle()
                    await self._hang_up()
                    stream.cancel()
                    sweep.cancel()
                if not self.leases:  # nothing was added while the tasks wound down
                    return
        except Exception as exc:
            _log.error("lease keep-alive failed; marking all its leases lost", exc_info=exc)
            failure = exc

            def reason() -> LeaseLostError:
                error = LeaseLostError(f"the keep-alive machinery failed: {failure!r}")
                error.__cause__ = failure
                return error

            self._fail_all(reason)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _hang_up(self) -> None:
        """End the current stream cleanly: half-close it and wait for the server's status.

        Merely cancelling would leave gRPC a completion event to deliver later,
        which grpc.aio loses (with the events queued behind it) if the event
        loop has closed by then. Bounded by a short grace period, and skipped
        for a stream that never got an answer (the server may be down).
        """
        call = self._call
        if call is None or call.done() or not self._established:
            return
        self._stopping = True
        try:
            async with asyncio.timeout(_HANG_UP_GRACE):
                await call.done_writing()
                await call.code()
        except (TimeoutError, grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # cancelled below instead

    async def _until_idle(self) -> None:
        while True:
            await self._empty.wait()
            try:
                async with asyncio.timeout(_IDLE_LINGER):
                    await self._busy.wait()
            except TimeoutError:
                if not self.leases:
                    return

    async def _deadline_loop(self) -> None:
        while True:
            await asyncio.sleep(_DEADLINE_CHECK)
            for kept in list(self.leases.values()):
                if kept.expired():  # the handle reported the loss itself
                    _log.warning(
                        "lease %#x lost: no keep-alive reply within its TTL of %d s",
                        kept.id,
                        kept.ttl,
                    )

    # -- the stream ------------------------------------------------------------------

    async def _stream_loop(self) -> None:
        """Open the stream, serve it until it breaks, wait 0.5 s, reopen; forever."""
        while True:
            await self._busy.wait()
            try:
                error = await self._session()
            except EtcdError as exc:  # opening failed (for example: the client closed)
                error = exc
            if isinstance(error, ClientClosedError | PermissionDeniedError | InvalidArgumentError):
                self._halt(error)
                continue
            if _needs_token(error):
                try:
                    await self._t.refresh_token()
                except EtcdError as exc:
                    if not exc.retryable:
                        self._halt(exc)
                        continue
            if not self._stopping:
                _log.info("lease keep-alive stream broke (%s); reopening", error)
                self._t.note_trouble()  # guard unary calls with hasleader for a while
            await asyncio.sleep(_RECONNECT_WAIT)

    def _halt(self, error: EtcdError) -> None:
        """A failure that reopening cannot fix: every current lease is lost."""
        if self.leases and not isinstance(error, ClientClosedError):
            _log.warning("lease keep-alive stream failed (%s); its leases are lost", error)

        def reason() -> LeaseLostError:
            lost = LeaseLostError(f"the keep-alive stream failed: {error}")
            lost.__cause__ = error
            return lost

        self._fail_all(reason)

    async def _session(self) -> EtcdError:
        """Serve one stream until it ends; return the error that ended it."""
        t = self._t
        metadata = await t.stream_metadata()
        call: StreamCall = t.lease.LeaseKeepAlive(metadata=metadata, wait_for_ready=True)
        self._call = call
        self._established = False
        self.streams_opened += 1
        self._outbox.clear()
        try:
            # A new stream: every lease is due now (Go resends on reconnect too).
            now = time.monotonic()
            for kept in self.leases.values():
                kept.seq += 1
                kept.next = now
            self._heap[:] = [(now, x.seq, x.id) for x in self.leases.values()]
            heapq.heapify(self._heap)
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send_loop(call))
                error = await self._receive_loop(call)
                sender.cancel()
            return error
        finally:
            if self._call is call:
                self._call = None
            call.cancel()

    # -- receiving -------------------------------------------------------------------

    async def _receive_loop(self, call: StreamCall) -> EtcdError:
        while True:
            try:
                response = await call.read()
            except grpc.aio.AioRpcError as exc:
                error = _from_grpc(exc)
                error.__cause__ = exc
                return error
            if not isinstance(response, pb.LeaseKeepAliveResponse):
                return ConnectionFailedError("the server ended the keep-alive stream")
            self.received += 1
            self._established = True
            self._on_reply(response.ID, response.TTL)

    def _on_reply(self, lid: int, ttl: int) -> None:
        kept = self.leases.get(lid)
        if kept is None:  # revoked or released meanwhile
            return
        now = time.monotonic()
        if ttl <= 0:
            if not kept.confirmed and not kept.retried:
                # etcd < 3.5.3 can race a keep-alive with the grant it follows (#13932).
                kept.retried = True
                self._push(kept, now + _STARTUP_RETRY)
                return
            _log.warning("lease %#x lost: it expired or was revoked", lid)
            kept.lost(
                LeaseLostError(
                    f"lease {lid:#x} expired or was revoked (its keep-alive was answered TTL 0)"
                ),
                True,
            )
            return
        kept.confirmed = True
        kept.ttl = ttl
        kept.renewed(now, ttl)
        when = _next_tick(now, ttl / 3)
        if when != kept.next:  # usually the tick the send already scheduled
            self._push(kept, when)

    # -- sending ---------------------------------------------------------------------

    async def _send_loop(self, call: StreamCall) -> None:
        heap = self._heap
        leases = self.leases
        outbox = self._outbox
        while True:
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, seq, lid = heapq.heappop(heap)
                kept = leases.get(lid)
                if kept is not None and kept.seq == seq:
                    # Send again a TTL/3 tick later if no reply reschedules it.
                    self._push(kept, _next_tick(now, kept.ttl / 3))
                    outbox.append(kept)
            self._wake.clear()
            if outbox and not await self._write(call):
                return  # the stream broke; the receiver reports why
            self._sleep_until = heap[0][0] if heap else math.inf
            delay = self._sleep_until - time.monotonic()
            if delay > 0 and not self._wake.is_set():
                try:
                    async with asyncio.timeout(None if math.isinf(delay) else delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._sleep_until = -math.inf

    async def _write(self, call: StreamCall) -> bool:
        """Write the outbox, back to back; False if the stream broke."""
        outbox = self._outbox
        while outbox:
            kept = outbox.popleft()
            if kept.lessor is not self:
                continue  # removed while queued
            self.sent += 1
            try:
                await call.write(kept.request)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                return False  # the receiver reports why
        return True
