"""The Lease facade: grant, revoke, refresh and inspect leases, and keep them alive.

``client.lease(ttl)`` grants a lease and keeps it alive in the background until
the ``async with`` block exits, then revokes it; ``client.keepalive(lease)``
keeps alive a lease granted elsewhere, without revoking it. Every lease a client
keeps alive shares **one** LeaseKeepAlive stream, run by a :class:`_KeepAlive`
manager that mirrors Go's ``lessor`` (``client/v3/lease.go``):

* each lease is sent a keep-alive at most TTL/3 after its last reply, at the
  latest tick of a TTL/3 grid at or before that time (so never later, and
  never more than once per TTL/3 in steady state). Leases of the same TTL thus
  share their send times: one wake-up renews them all, back to back;
* a lease is *lost* when the server answers TTL <= 0 (expired or revoked), or
  when no reply arrived within its TTL (deadline = last reply + TTL, checked
  about once a second like Go's ``deadlineLoop``);
* a broken stream is reopened after 0.5 s with fresh metadata (``hasleader``
  and the auth token), and every lease is sent a keep-alive at once. Leases
  keep their deadlines meanwhile, so an outage shorter than the TTL is
  survived and a longer one marks them lost.

A lost lease never comes back: ``lease.alive`` turns False, ``await
lease.lost()`` returns and ``lease.lost_reason`` says why.

Why the grid: at a few hundred keep-alives a second the cost is not Python
but wake-ups. Each grpc.aio stream message is a completion that wakes gRPC's
poller thread and the event loop. Renewing leases on a shared TTL/3 grid
turns the renewals of many leases into one burst per tick, written back to
back by one task while another reads the replies (see BENCHMARKS.md, "Lease
keep-alives"). Only grpc.aio's public ``write()``/``read()`` are used.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import logging
import math
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, TypeAlias

import grpc
import grpc.aio

from ._channel import State, Transport, not_sent
from ._keys import INT64_MAX
from ._pb import rpc_pb2
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    EtcdError,
    InvalidArgumentError,
    LeaseLostError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
    OutcomeUnknownError,
    PermissionDeniedError,
    _rejected,
    from_grpc,
)
from .ops import LeaseLike, lease_id
from .types import LeaseInfo

__all__ = ["MAX_LEASE_TTL", "Lease", "LeaseAPI"]

_log = logging.getLogger("aetcd")

#: The largest TTL etcd grants, in seconds (``MaxLeaseTTL``).
MAX_LEASE_TTL: Final = 9_000_000_000

_RECONNECT_WAIT: Final = 0.5  # before reopening a broken stream (Go: retryConnWait)
_DEADLINE_CHECK: Final = 1.0  # period of the deadline sweep (Go: deadlineLoop)
_STARTUP_RETRY: Final = 0.2  # etcd < 3.5.3 may answer TTL 0 right after a grant (#13932)
_IDLE_LINGER: Final = 5.0  # keep the stream this long after the last lease leaves
_BACKOFF: Final = 0.025  # between keepalive_once retries (as for unary reads)
_HANG_UP_GRACE: Final = 1.0  # for the server to end a half-closed stream cleanly

StreamCall: TypeAlias = grpc.aio.StreamStreamCall[
    rpc_pb2.LeaseKeepAliveRequest, rpc_pb2.LeaseKeepAliveResponse
]


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


def _check_ttl(ttl: object) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TypeError(f"ttl must be an int number of seconds, not {type(ttl).__name__}")
    if ttl <= 0:
        # The server would silently grant its minimum TTL instead (B11).
        raise InvalidArgumentError(f"ttl must be > 0 seconds, got {ttl}")
    if ttl > MAX_LEASE_TTL:
        raise _rejected(
            LeaseTTLTooLargeError,
            "etcdserver: too large lease TTL",
            f"ttl must be at most {MAX_LEASE_TTL} seconds, got {ttl}",
        )
    return int(ttl)


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"id must be int, not {type(value).__name__}")
    if value < 0 or value > INT64_MAX:
        # The server would accept a negative id (B13).
        raise InvalidArgumentError(f"lease id must be between 0 (auto) and 2**63-1, got {value}")
    return int(value)


def _needs_token(exc: EtcdError) -> bool:
    # errors.py marks exactly the "fresh token helps" auth errors as retryable.
    return isinstance(exc, AuthenticationError) and exc.retryable


class Lease:
    """A granted lease, and this client's view of whether it is still alive.

    ``id`` and ``ttl`` (the granted TTL, seconds) are fixed. ``alive`` is the
    client's estimate: it turns False, for good, once the lease is known lost
    (a keep-alive answered TTL 0, no renewal succeeded within the TTL, it was
    revoked through this client, or the client was closed). ``lost_reason`` then
    holds a :class:`aetcd.LeaseLostError` saying why (its ``__cause__`` is the
    underlying error, if any: a :class:`aetcd.LeaseNotFoundError` when the
    server said the lease no longer exists, i.e. it expired or was revoked).

    Pass a ``Lease`` wherever a lease id is accepted (``client.put(...,
    lease=lease)``). Leases from :meth:`LeaseAPI.grant` are not kept alive:
    they are lost at their deadline unless :meth:`refresh` extends it; those
    from ``client.lease()`` and ``client.keepalive()`` are kept alive in the
    background.
    """

    __slots__ = (
        "_api",
        "_confirmed",
        "_current_ttl",
        "_deadline",
        "_gone",
        "_holders",
        "_id",
        "_keeper",
        "_listener",
        "_lost",
        "_next",
        "_reason",
        "_request",
        "_retried",
        "_seq",
        "_ttl",
    )

    def __init__(self, api: LeaseAPI, id: int, ttl: int, renewed_at: float) -> None:
        self._api = api
        self._id = id
        self._ttl = ttl
        self._current_ttl = ttl
        self._deadline = renewed_at + ttl
        self._lost = asyncio.Event()
        self._reason: LeaseLostError | None = None
        self._gone = False  # the server said the lease no longer exists
        # Keep-alive bookkeeping, owned by the _KeepAlive manager.
        self._keeper: _KeepAlive | None = None
        self._holders = 0  # client.lease() / client.keepalive() blocks keeping it alive
        self._seq = 0  # only the heap entry carrying the current seq is live
        self._next = -math.inf  # when the live heap entry is due
        self._confirmed = False  # a keep-alive was answered with TTL > 0
        self._retried = False  # the one startup retry on TTL 0 was used
        self._request = rpc_pb2.LeaseKeepAliveRequest(ID=id)
        # Called with the new TTL on every renewal (the CLI prints them).
        self._listener: Callable[[int], None] | None = None

    def __repr__(self) -> str:
        state = "alive" if self.alive else "lost"
        return f"<aetcd.Lease id={self._id:#x} ttl={self._ttl} {state}>"

    @property
    def id(self) -> int:
        """The lease id (what ``KeyValue.lease`` shows for attached keys)."""
        return self._id

    @property
    def ttl(self) -> int:
        """The TTL the server granted, in seconds (it may raise a tiny TTL to its minimum)."""
        return self._ttl

    @property
    def alive(self) -> bool:
        """False once the lease is known lost (see the class doc); never True again."""
        self._check_deadline()
        return not self._lost.is_set()

    @property
    def remaining(self) -> float:
        """Seconds until the lease expires by this client's estimate (0.0 once lost)."""
        if not self.alive:
            return 0.0
        return max(0.0, self._deadline - time.monotonic())

    @property
    def lost_reason(self) -> LeaseLostError | None:
        """Why the lease was lost, or ``None`` while it is alive."""
        self._check_deadline()
        return self._reason

    async def lost(self) -> None:
        """Return once the lease is lost (at once if it already is).

        Never raises on loss itself; read :attr:`lost_reason`. Cancelling the
        waiting task only ends the wait.
        """
        while not self._lost.is_set():
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self._check_deadline()
                continue
            try:
                async with asyncio.timeout(remaining):
                    await self._lost.wait()
            except TimeoutError:
                pass

    async def revoke(self, *, timeout: float | None = None) -> None:
        """Revoke the lease now, deleting its keys; see :meth:`LeaseAPI.revoke`."""
        await self._api.revoke(self, timeout=timeout)

    async def refresh(self, *, timeout: float | None = None) -> int:
        """Renew the lease once and return its new TTL; see :meth:`LeaseAPI.keepalive_once`."""
        return await self._api.keepalive_once(self, timeout=timeout)

    async def time_to_live(self, *, keys: bool = False, timeout: float | None = None) -> LeaseInfo:
        """Ask the server about this lease; see :meth:`LeaseAPI.time_to_live`."""
        return await self._api.time_to_live(self, keys=keys, timeout=timeout)

    def on_renewed(self, callback: Callable[[int], None] | None) -> None:
        """Call *callback* with the new TTL after each renewal (``None``: stop).

        One callback per lease; it runs on the keep-alive task, so it must not
        block (e.g. ``queue.put_nowait``). Renewals by :meth:`refresh` count too.
        """
        self._listener = callback

    def release(self) -> None:
        """Stop keeping the lease alive here, without revoking it (Go's ``Session.Orphan``).

        The handle reports the lease lost at once; on the server it expires one
        TTL after its last renewal, unless someone else renews or revokes it.
        Keys attached to it stay until then.
        """
        self._mark_lost(
            LeaseLostError(
                f"lease {self._id:#x} released: no longer kept alive by this client; "
                "it expires on the server within its TTL"
            )
        )

    # -- bookkeeping ---------------------------------------------------------------

    def _renewed(self, at: float, ttl: int) -> None:
        self._current_ttl = ttl
        self._deadline = max(self._deadline, at + ttl)
        if self._listener is not None:
            self._listener(ttl)

    def _check_deadline(self) -> None:
        if not self._lost.is_set() and time.monotonic() >= self._deadline:
            self._mark_lost(
                LeaseLostError(
                    f"lease {self._id:#x}: no successful keep-alive within its TTL of "
                    f"{self._current_ttl} s; it has probably expired"
                )
            )

    def _mark_lost(self, reason: LeaseLostError, *, gone: bool = False) -> None:
        """Record the loss (first reason wins), wake ``lost()`` waiters, stop keep-alives.

        ``gone=True``: the server confirmed the lease no longer exists.
        """
        self._gone = self._gone or gone
        if self._lost.is_set():
            return
        if gone and reason.__cause__ is None:
            reason.__cause__ = LeaseNotFoundError(str(reason))
        self._reason = reason
        self._lost.set()
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.remove(self)


class _KeepAlive:
    """The one LeaseKeepAlive stream of a client, shared by all its kept-alive leases.

    Created by the first ``client.lease()`` / ``client.keepalive()`` and closed by
    ``client.close()`` (through :meth:`LeaseAPI.aclose`). It owns one
    background task, started when a lease is added and ended when none has been
    left for a few seconds or when the client closes; inside it a TaskGroup runs
    the stream (sender and receiver) and the deadline sweep. A broken stream is
    reopened after 0.5 s; failures reopening cannot fix (permission denied, a
    failed re-authentication, a closed client) mark every current lease lost.
    An unexpected exception marks every lease lost (``lost_reason.__cause__`` is
    the exception), is logged on the ``aetcd`` logger, and ends the task.

    **A burst of due leases** goes into the outbox, which the sender writes
    back to back (``call.write()``) while the receiver reads the replies
    (``call.read()``): grpc.aio's public stream API only.
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self.leases: dict[int, Lease] = {}
        # (send time, seq, lease id); stale entries (seq != lease._seq) are skipped.
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
        self._outbox: collections.deque[Lease] = collections.deque()
        #: Keep-alive streams opened so far (a test hook, and a reconnect counter).
        self.streams_opened = 0
        #: Keep-alive requests sent and replies received, so far.
        self.sent = 0
        self.received = 0

    # -- membership ------------------------------------------------------------------

    def add(self, lease: Lease, *, renewed_at: float | None = None) -> None:
        """Keep *lease* alive from now on.

        A first keep-alive goes out at once, unless *renewed_at* says when the
        lease was last renewed: then on its TTL/3 grid after that.
        """
        if self._closed:
            raise ClientClosedError("the client is closed; create a new aetcd.Client")
        old = self.leases.get(lease.id)
        if old is not None and old is not lease:
            old._mark_lost(LeaseLostError(f"lease {lease.id:#x} was replaced by a new handle"))
        lease._keeper = self
        self.leases[lease.id] = lease
        self._busy.set()
        self._empty.clear()
        if renewed_at is None:
            self._push(lease, time.monotonic())
        else:
            lease._confirmed = True
            self._push(lease, _next_tick(renewed_at, lease._current_ttl / 3))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="aetcd lease keep-alive")

    def remove(self, lease: Lease) -> None:
        """Stop keeping *lease* alive (it is not revoked, and not marked lost)."""
        if self.leases.get(lease.id) is lease:
            del self.leases[lease.id]
            if not self.leases:
                self._busy.clear()
                self._empty.set()
        if lease._keeper is self:
            lease._keeper = None
        lease._seq += 1  # its heap entries are stale now

    def _push(self, lease: Lease, when: float) -> None:
        lease._seq += 1
        lease._next = when
        heapq.heappush(self._heap, (when, lease._seq, lease.id))
        if when < self._sleep_until:
            self._wake.set()
        if len(self._heap) > 4 * len(self.leases) + 64:
            self._compact()

    def _compact(self) -> None:
        # Stale entries of removed long-TTL leases would otherwise pile up.
        leases = self.leases
        self._heap[:] = [e for e in self._heap if (x := leases.get(e[2])) and x._seq == e[1]]
        heapq.heapify(self._heap)

    def _fail_all(self, reason: Callable[[], LeaseLostError]) -> None:
        for lease in list(self.leases.values()):
            lease._mark_lost(reason())

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
            now = time.monotonic()
            for lease in [x for x in self.leases.values() if x._deadline <= now]:
                _log.warning(
                    "lease %#x lost: no keep-alive reply within its TTL of %d s",
                    lease.id,
                    lease._current_ttl,
                )
                lease._check_deadline()

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
            for lease in self.leases.values():
                lease._seq += 1
                lease._next = now
            self._heap[:] = [(now, x._seq, x.id) for x in self.leases.values()]
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
                error = from_grpc(exc)
                error.__cause__ = exc
                return error
            if not isinstance(response, rpc_pb2.LeaseKeepAliveResponse):
                return ConnectionFailedError("the server ended the keep-alive stream")
            self.received += 1
            self._established = True
            self._on_reply(response.ID, response.TTL)

    def _on_reply(self, lid: int, ttl: int) -> None:
        lease = self.leases.get(lid)
        if lease is None:  # revoked or released meanwhile
            return
        now = time.monotonic()
        if ttl <= 0:
            if not lease._confirmed and not lease._retried:
                # etcd < 3.5.3 can race a keep-alive with the grant it follows (#13932).
                lease._retried = True
                self._push(lease, now + _STARTUP_RETRY)
                return
            _log.warning("lease %#x lost: it expired or was revoked", lid)
            lease._mark_lost(
                LeaseLostError(
                    f"lease {lid:#x} expired or was revoked (its keep-alive was answered TTL 0)"
                ),
                gone=True,
            )
            return
        lease._confirmed = True
        lease._renewed(now, ttl)
        when = _next_tick(now, ttl / 3)
        if when != lease._next:  # usually the tick the send already scheduled
            self._push(lease, when)

    # -- sending ---------------------------------------------------------------------

    async def _send_loop(self, call: StreamCall) -> None:
        heap = self._heap
        leases = self.leases
        outbox = self._outbox
        while True:
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, seq, lid = heapq.heappop(heap)
                lease = leases.get(lid)
                if lease is not None and lease._seq == seq:
                    # Send again a TTL/3 tick later if no reply reschedules it.
                    self._push(lease, _next_tick(now, lease._current_ttl / 3))
                    outbox.append(lease)
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
            lease = outbox.popleft()
            if lease._keeper is not self:
                continue  # removed while queued
            self.sent += 1
            try:
                await call.write(lease._request)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                return False  # the receiver reports why
        return True


class _LeaseContext:
    """``async with client.lease(ttl) as lease``: grant, keep alive, revoke on exit."""

    __slots__ = ("_api", "_id", "_lease", "_ttl")

    def __init__(self, api: LeaseAPI, ttl: int, id: int) -> None:
        self._api = api
        self._ttl = ttl
        self._id = id
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        if self._lease is not None:
            raise RuntimeError("this client.lease() context is already entered")
        lease = await self._api.grant(self._ttl, id=self._id)
        # Just granted with its full TTL: the first keep-alive is due on the
        # TTL/3 grid, not at once (one stream message less per short-lived
        # session, and no keep-alive racing its own grant: etcd#13932).
        self._api._keeper().add(lease, renewed_at=lease._deadline - lease._current_ttl)
        lease._holders = 1
        self._lease = lease
        return lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        error = await _shielded_release(self._api, lease)
        if error is None:
            return
        if exc_type is None:
            raise error
        _log.warning("could not revoke lease %#x on exit (%s); it expires later", lease.id, error)


class _KeepAliveContext:
    """``async with client.keepalive(lease) as lease``: keep an existing lease alive, no revoke."""

    __slots__ = ("_api", "_given", "_lease")

    def __init__(self, api: LeaseAPI, lease: LeaseLike) -> None:
        self._api = api
        self._given = lease
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        if self._lease is not None:
            raise RuntimeError("this client.keepalive() context is already entered")
        api = self._api
        given = self._given
        lid = lease_id(given)
        lease = self._kept(lid)
        if lease is None:
            sent = time.monotonic()
            ttl = await api.keepalive_once(given)  # LeaseNotFoundError if it is gone
            lease = self._kept(lid)  # another block may have added it meanwhile
            if lease is None:
                if isinstance(given, Lease) and given._api is api and given.alive:
                    lease = given
                else:
                    lease = Lease(api, lid, ttl, sent)
                lease._current_ttl = ttl
                api._keeper().add(lease, renewed_at=sent)
        lease._holders += 1
        self._lease = lease
        return lease

    def _kept(self, lid: int) -> Lease | None:
        keeper = self._api._keepalive
        lease = None if keeper is None else keeper.leases.get(lid)
        return lease if lease is not None and lease.alive else None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        lease._holders -= 1
        keeper = lease._keeper
        if lease._holders <= 0 and keeper is not None:
            keeper.remove(lease)


async def _shielded_release(api: LeaseAPI, lease: Lease) -> EtcdError | None:
    """Stop keeping *lease* alive and revoke it, even if the calling task is cancelled.

    The revoke runs in its own task, bounded by min(TTL, client timeout); a
    cancellation of the caller is held back until it finishes, then re-raised.
    Returns the revoke error (``None`` on success, or when the lease was gone).
    """
    keeper = lease._keeper
    if keeper is not None:
        keeper.remove(lease)
    if lease._gone or api._t.state is State.CLOSED:
        # Nothing to revoke, or no way to (close() marked it lost; it expires by itself).
        lease._mark_lost(LeaseLostError(f"lease {lease.id:#x} was released"))
        return None
    was_alive = lease.alive
    limit = float(lease.ttl)
    if api._t.config.timeout is not None:
        limit = min(limit, api._t.config.timeout)
    task = asyncio.create_task(_revoke_for_release(api, lease, limit))
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            error = await asyncio.shield(task)
            break
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    if error is not None and not was_alive:
        # Already lost (most likely expired): a failed revoke changes nothing.
        _log.info("lease %#x: revoke on release failed: %s", lease.id, error)
        return None
    return error


async def _revoke_for_release(api: LeaseAPI, lease: Lease, timeout: float) -> EtcdError | None:
    try:
        await api.revoke(lease, timeout=timeout)
    except LeaseNotFoundError:
        lease._mark_lost(LeaseLostError(f"lease {lease.id:#x} was already gone when released"))
    except EtcdError as exc:
        lost = LeaseLostError(f"lease {lease.id:#x} was released but could not be revoked: {exc}")
        lost.__cause__ = exc
        lease._mark_lost(lost)
        return exc
    return None


class LeaseAPI:
    """Lease operations of :class:`aetcd.Client` (etcd's Lease service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self._keepalive: _KeepAlive | None = None

    async def aclose(self) -> None:
        """Stop keeping leases alive (their handles report the loss)."""
        keeper = self._keepalive
        if keeper is not None:
            await keeper.close()

    def _keeper(self) -> _KeepAlive:
        """The client's shared keep-alive manager, created on first use."""
        keeper = self._keepalive
        if keeper is None:
            self._t._check_usable()
            keeper = self._keepalive = _KeepAlive(self._t)
        return keeper

    def _gone(self, lease: LeaseLike, lid: int, message: str) -> None:
        """The server says lease *lid* no longer exists: tell its handles at once."""
        if isinstance(lease, Lease):
            lease._mark_lost(LeaseLostError(message), gone=True)
        keeper = self._keepalive
        if keeper is not None and (kept := keeper.leases.get(lid)) is not None:
            kept._mark_lost(LeaseLostError(message), gone=True)

    async def grant(self, ttl: int, *, id: int = 0, timeout: float | None = None) -> Lease:
        """Grant a lease of *ttl* seconds (``id=0``: the server picks the id).

        The lease is not kept alive: put keys on it, then renew it with
        :meth:`keepalive_once`, or use ``client.lease()`` instead. A non-int
        ``ttl`` is a ``TypeError``; ``ttl <= 0`` (which etcd would silently turn
        into 2 s) or a negative ``id`` an :class:`aetcd.InvalidArgumentError`;
        ``ttl`` above :data:`MAX_LEASE_TTL` an :class:`aetcd.LeaseTTLTooLargeError`,
        all before any I/O. An id in use raises :class:`aetcd.LeaseExistsError`.

        With ``id=0`` a failed attempt is retried like a read (as Go does): at
        worst a retry leaves an unused lease behind that expires after *ttl*.
        With an explicit ``id`` it is not, since a retry of an applied grant
        would fail with LeaseExistsError: a failure in transit raises
        :class:`aetcd.OutcomeUnknownError`.
        """
        seconds = _check_ttl(ttl)
        lid = _check_id(id)
        self._t.deadline(timeout)  # validate before any I/O
        t = self._t
        request = rpc_pb2.LeaseGrantRequest(TTL=seconds, ID=lid)
        sent = time.monotonic()
        response = await t.unary(t.lease.LeaseGrant, request, timeout, write=lid != 0)
        if response.error:
            raise EtcdError(response.error)
        return Lease(self, response.ID, response.TTL, sent)

    async def revoke(self, lease: LeaseLike, *, timeout: float | None = None) -> None:
        """Revoke *lease* now: it ends and its keys are deleted.

        Raises :class:`aetcd.LeaseNotFoundError` if the lease does not exist
        (expired, revoked, or never granted). If the first attempt fails in
        transit it is retried within the deadline, and a not-found answer to
        that retry counts as success (the first attempt did the revoke).
        """
        lid = lease_id(lease)
        budget = self._t.deadline(timeout)
        t = self._t
        request = rpc_pb2.LeaseRevokeRequest(ID=lid)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await t.unary(t.lease.LeaseRevoke, request, timeout, write=True)
        except LeaseNotFoundError:
            self._gone(lease, lid, f"lease {lid:#x} was not found")
            raise
        except EtcdError as exc:
            ambiguous = isinstance(exc, OutcomeUnknownError)
            if not (ambiguous or exc.retryable):
                raise
            remaining = math.inf if budget is None else budget - (loop.time() - start)
            if remaining <= 0:
                raise
            try:
                await t.unary(t.lease.LeaseRevoke, request, remaining, write=False)
            except LeaseNotFoundError:
                if not ambiguous:
                    raise
        self._gone(lease, lid, f"lease {lid:#x} was revoked")

    async def keepalive_once(self, lease: LeaseLike, *, timeout: float | None = None) -> int:
        """Renew *lease* once and return its new TTL in seconds.

        Uses a short-lived LeaseKeepAlive stream. Transient failures are retried
        within the deadline, which also bounds the wait for a connected member.
        An expired or unknown lease (the server answers TTL 0) raises
        :class:`aetcd.LeaseNotFoundError`. A :class:`Lease` handle's deadline
        is extended on success.
        """
        lid = lease_id(lease)
        budget = self._t.deadline(timeout)
        t = self._t
        loop = asyncio.get_running_loop()
        deadline = None if budget is None else loop.time() + budget
        refreshed = False
        while True:
            sent = time.monotonic()
            try:
                ttl = await self._keepalive_call(t, lid, deadline)
                break
            except EtcdError as exc:
                if _needs_token(exc) and not refreshed:
                    refreshed = True
                    await t.refresh_token()
                    continue
                pause = _BACKOFF * random.uniform(0.9, 1.1)
                if not exc.retryable or (deadline is not None and loop.time() + pause >= deadline):
                    raise
                await asyncio.sleep(pause)
        if ttl <= 0:
            self._gone(lease, lid, f"lease {lid:#x} expired or was revoked")
            raise LeaseNotFoundError(f"lease {lid:#x} not found (expired or revoked)")
        if isinstance(lease, Lease):
            lease._renewed(sent, ttl)
        return ttl

    async def _keepalive_call(self, t: Transport, lid: int, deadline: float | None) -> int:
        """One keep-alive on a stream of its own, all of it (the wait for a
        connected member included) within *deadline* (loop time, ``None``: none)."""
        loop = asyncio.get_running_loop()
        timeout = None if deadline is None else deadline - loop.time()
        metadata = await t.stream_metadata(timeout)  # waits for a live member, within the deadline
        if deadline is not None:
            # What the wait left: the stream gets no fresh deadline of its own.
            timeout = deadline - loop.time()
            if timeout <= 0:
                raise not_sent(False, "no etcd member was reachable within the deadline")
        call: StreamCall = t.lease.LeaseKeepAlive(
            timeout=timeout, metadata=metadata, wait_for_ready=True
        )
        try:
            await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lid))
            response = await call.read()
            await call.done_writing()  # let the server end the stream (see _hang_up)
            await call.code()
        except grpc.aio.AioRpcError as exc:
            error = from_grpc(exc)
            error.__cause__ = exc
            raise error from None
        finally:
            call.cancel()  # a no-op once the stream ended
        if not isinstance(response, rpc_pb2.LeaseKeepAliveResponse):
            raise ConnectionFailedError("the server ended the keep-alive stream without a reply")
        return response.TTL

    async def time_to_live(
        self, lease: LeaseLike, *, keys: bool = False, timeout: float | None = None
    ) -> LeaseInfo:
        """The server's view of *lease*: remaining ``ttl``, ``granted_ttl`` and,
        with ``keys=True``, the keys attached to it.

        An unknown or expired lease raises :class:`aetcd.LeaseNotFoundError`
        (etcd itself answers TTL -1 without an error). With a client
        ``namespace``, keys are listed relative to it and keys outside it are
        left out (as Go's ``namespace`` package does).
        """
        lid = lease_id(lease)
        if type(keys) is not bool:
            raise TypeError(f"keys must be bool, not {type(keys).__name__}")
        self._t.deadline(timeout)
        t = self._t
        request = rpc_pb2.LeaseTimeToLiveRequest(ID=lid, keys=keys)
        response = await t.unary(t.lease.LeaseTimeToLive, request, timeout, write=False)
        if response.TTL < 0:
            self._gone(lease, lid, f"lease {lid:#x} expired or was revoked")
            raise LeaseNotFoundError(f"lease {lid:#x} not found (expired or revoked)")
        info = LeaseInfo.from_pb(response)
        ns = t.config.namespace
        if ns and info.keys:
            inside = [k[len(ns) :] for k in info.keys if k.startswith(ns)]
            info = dataclasses.replace(info, keys=inside)
        return info

    async def leases(self, *, timeout: float | None = None) -> list[int]:
        """The ids of every lease the cluster currently holds."""
        self._t.deadline(timeout)
        t = self._t
        response = await t.unary(
            t.lease.LeaseLeases, rpc_pb2.LeaseLeasesRequest(), timeout, write=False
        )
        return [status.ID for status in response.leases]

    def lease(self, ttl: int = 5, *, id: int = 0) -> _LeaseContext:
        """``async with client.lease(ttl) as lease:`` a lease kept alive for the block.

        Entering grants the lease (see :meth:`grant`; bad arguments raise here,
        before any I/O) and hands it to the client's shared keep-alive stream.
        ``lease.alive`` / ``await lease.lost()`` tell if it is lost meanwhile
        (expired, revoked elsewhere, or unreachable for longer than its TTL);
        the block is not interrupted.

        Exiting stops the keep-alives and revokes the lease, within min(TTL,
        client timeout). The revoke also happens when the block is left by
        cancellation (the cancellation is re-raised once it is done); a lease
        that is already gone is fine. If the revoke fails, the error is raised
        when the block ended normally and logged otherwise; the lease then
        expires after its TTL. ``client.close()`` stops keep-alives without
        revoking. If entering is cancelled while the grant is in flight, a lease
        the server did grant is left to expire after its TTL.
        """
        return _LeaseContext(self, _check_ttl(ttl), _check_id(id))

    def keepalive(self, lease: LeaseLike) -> _KeepAliveContext:
        """``async with client.keepalive(lease) as handle:`` keep an existing lease alive.

        For a lease granted elsewhere: by another process, or by :meth:`grant`
        (Go's ``KeepAlive(ctx, id)``). *lease* is a :class:`Lease` or a lease
        id; a bad one raises here, before any I/O. Entering renews the lease
        once (see :meth:`keepalive_once`: an expired or unknown lease raises
        :class:`aetcd.LeaseNotFoundError`), then renews it on the client's
        shared keep-alive stream, like ``client.lease()``. The handle is
        *lease* itself when it is a live ``Lease`` of this client, else a new
        one; ``handle.alive`` / ``await handle.lost()`` work as for
        ``client.lease()``.

        Exiting stops the renewals but does **not** revoke the lease (this
        block did not grant it): it expires one TTL after its last renewal
        unless someone renews or revokes it. If this client already keeps the
        lease alive (another ``keepalive()`` or a ``client.lease()`` block), the
        block shares that handle and renewals go on until the last such block
        has exited (a ``client.lease()`` block still revokes when it exits).
        """
        lease_id(lease)
        return _KeepAliveContext(self, lease)
