"""The Lease facade: grant, revoke, refresh and inspect leases, and keep them alive.

``client.lease(ttl)`` grants a lease and keeps it alive in the background until
the ``async with`` block exits, then revokes it; ``client.keepalive(lease)``
keeps alive a lease granted elsewhere, without revoking it. Every lease a client
keeps alive shares **one** LeaseKeepAlive stream, run by the
keep-alive scheduler in ``aetcd._lessor``, which mirrors Go's ``lessor`` (``client/v3/lease.go``):

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
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Final

import grpc
import grpc.aio

from ._backoff import Backoff
from ._channel import Transport, not_sent
from ._keys import INT64_MAX
from ._lease_blocks import _KeepAliveContext, _LeaseContext
from ._lessor import KeepAlive, Kept, StreamCall, _needs_token
from ._wire import messages as pb
from ._wire.decode import lease_info
from ._wire.namespace import Namespace
from .errors import (
    ConnectionFailedError,
    EtcdError,
    InvalidArgumentError,
    LeaseLostError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
    OutcomeUnknownError,
    _from_grpc,
    _rejected,
)
from .ops import LeaseLike, _lease_id
from .types import LeaseInfo

__all__ = ["MAX_LEASE_TTL", "Lease", "LeaseAPI"]

#: The largest TTL etcd grants, in seconds (``MaxLeaseTTL``).
MAX_LEASE_TTL: Final = 9_000_000_000

_BACKOFF: Final = 0.025  # between keepalive_once retries (as for unary reads)


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
        "_current_ttl",
        "_deadline",
        "_gone",
        "_holders",
        "_id",
        "_kept",
        "_listener",
        "_lost",
        "_reason",
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
        # The keep-alive scheduler's record while it keeps this lease alive.
        self._kept: Kept[Lease] | None = None
        self._holders = 0  # client.lease() / client.keepalive() blocks keeping it alive
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

    def _expired(self) -> bool:
        """Whether the TTL ran out by this client's estimate (then the loss is recorded)."""
        self._check_deadline()
        return self._lost.is_set()

    def _keep(self, keeper: KeepAlive[Lease], renewed_at: float | None) -> None:
        """Have *keeper* keep this lease alive (see :meth:`KeepAlive.add`)."""
        kept = Kept(
            self._id,
            self._current_ttl,
            self,
            renewed=self._renewed,
            lost=self._mark_lost,
            expired=self._expired,
        )
        self._kept = keeper.add(kept, renewed_at=renewed_at)

    def _stop_keeping(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.stop()

    def _mark_lost(self, reason: LeaseLostError, gone: bool = False) -> None:
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
        self._stop_keeping()


class LeaseAPI:
    """Lease operations of :class:`aetcd.Client` (etcd's Lease service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self._ns = Namespace.of(transport.config)
        self._keepalive: KeepAlive[Lease] | None = None

    async def aclose(self) -> None:
        """Stop keeping leases alive (their handles report the loss)."""
        keeper = self._keepalive
        if keeper is not None:
            await keeper.close()

    def _keeper(self) -> KeepAlive[Lease]:
        """The client's shared keep-alive manager, created on first use."""
        keeper = self._keepalive
        if keeper is None:
            self._t.check_usable()
            keeper = self._keepalive = KeepAlive[Lease](self._t)
        return keeper

    def _adopt(self, given: LeaseLike, lid: int, ttl: int, renewed_at: float) -> Lease:
        """Keep lease *lid* alive: *given* if it is a live ``Lease`` of this client,
        else a new handle (``client.keepalive()`` of a lease granted elsewhere)."""
        if isinstance(given, Lease) and given._api is self and given.alive:
            lease = given
        else:
            lease = Lease(self, lid, ttl, renewed_at)
        lease._current_ttl = ttl
        lease._keep(self._keeper(), renewed_at=renewed_at)
        return lease

    def _gone(self, lease: LeaseLike, lid: int, message: str) -> None:
        """The server says lease *lid* no longer exists: tell its handles at once."""
        if isinstance(lease, Lease):
            lease._mark_lost(LeaseLostError(message), gone=True)
        keeper = self._keepalive
        if keeper is not None and (kept := keeper.leases.get(lid)) is not None:
            kept.lost(LeaseLostError(message), True)

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
        request = pb.LeaseGrantRequest(TTL=seconds, ID=lid)
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
        lid = _lease_id(lease)
        budget = self._t.deadline(timeout)
        t = self._t
        request = pb.LeaseRevokeRequest(ID=lid)
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
        lid = _lease_id(lease)
        budget = self._t.deadline(timeout)
        t = self._t
        loop = asyncio.get_running_loop()
        deadline = None if budget is None else loop.time() + budget
        refreshed = False
        backoff = Backoff(_BACKOFF, jitter=0.1)  # a constant 25 ms +-10 %
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
                if not exc.retryable:
                    raise
                await backoff.pause(deadline, exc)
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
            await call.write(pb.LeaseKeepAliveRequest(ID=lid))
            response = await call.read()
            await call.done_writing()  # let the server end the stream (see _lessor._hang_up)
            await call.code()
        except grpc.aio.AioRpcError as exc:
            error = _from_grpc(exc)
            error.__cause__ = exc
            raise error from None
        finally:
            call.cancel()  # a no-op once the stream ended
        if not isinstance(response, pb.LeaseKeepAliveResponse):
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
        lid = _lease_id(lease)
        if type(keys) is not bool:
            raise TypeError(f"keys must be bool, not {type(keys).__name__}")
        self._t.deadline(timeout)
        t = self._t
        request = pb.LeaseTimeToLiveRequest(ID=lid, keys=keys)
        response = await t.unary(t.lease.LeaseTimeToLive, request, timeout, write=False)
        if response.TTL < 0:
            self._gone(lease, lid, f"lease {lid:#x} expired or was revoked")
            raise LeaseNotFoundError(f"lease {lid:#x} not found (expired or revoked)")
        info = lease_info(response)
        ns = self._ns
        if ns is not None and info.keys:
            info = dataclasses.replace(info, keys=ns.keys(info.keys))
        return info

    async def leases(self, *, timeout: float | None = None) -> list[int]:
        """The ids of every lease the cluster currently holds."""
        self._t.deadline(timeout)
        t = self._t
        response = await t.unary(t.lease.LeaseLeases, pb.LeaseLeasesRequest(), timeout, write=False)
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
        _lease_id(lease)
        return _KeepAliveContext(self, lease)
