"""The transport: the client's lifecycle, the auth token's metadata, the
per-call deadline, retries and error translation.

Every unary RPC of every facade goes through :meth:`Transport.unary`; streams
(watch, keep-alive, snapshot) pick their member when they are opened. Member
choice, suspicion and probes are in ``_members``, getting the token in
``_token``, endpoint auto-sync in ``_autosync``. Failover works like Go's
client:

* Reads and other repeatable calls are retried on transient failures until the
  call's deadline, each attempt limited to a third of it (at least 1 s) when
  there are several members, so a member that swallows requests costs one
  attempt and the retry goes elsewhere.
* Writes are retried only when the server proves it did not apply them
  (``no leader`` from the ``hasleader`` check, ``too many requests``, an
  expired token, ...). A write that failed in transit raises
  :class:`aetcd.OutcomeUnknownError`, never success and never a silent retry.
* KV and lease calls carry ``hasleader=true`` (except serializable reads)
  while the client has seen trouble in the last 30 s (``require_leader=None``,
  the default; ``True``: always, ``False``: never): a member cut off from its
  leader then refuses them at once, provably unapplied, and the retry goes to
  a member that has one. The check costs 5-10 us of client CPU per call
  (BENCHMARKS.md), so a healthy cluster does not pay it. Watch and keep-alive
  streams always carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar, cast

import grpc
import grpc.aio

from . import _autosync, _token
from ._backoff import Backoff
from ._keys import to_timeout
from ._members import Chooser, Member, Method, Router, make_channel
from ._state import State, not_sent
from ._token import Credentials
from ._wire import messages as pb
from .config import ClientConfig, Endpoint
from .errors import _NOT_APPLIED as NOT_APPLIED
from .errors import (
    AuthenticationError,
    ClientClosedError,
    DeadlineExceededError,
    EtcdError,
    OutcomeUnknownError,
    _from_grpc,
)

# Re-exported: the facades and tests import these from here.
__all__ = [
    "Credentials",
    "Member",
    "State",
    "Transport",
    "make_channel",
    "not_sent",
]

T = TypeVar("T")

_log = logging.getLogger("aetcd")

_BACKOFF: Final = 0.025  # after a round of failed attempts (Go: 25 ms +-10 %)
_BACKOFF_MAX: Final = 0.5  # doubling per round up to this
_JITTER: Final = 0.1
_MIN_ATTEMPT: Final = 1.0  # shortest per-attempt deadline of a retried call
_CANCEL_DRAIN: Final = 0.05  # for gRPC to deliver the final events of cancelled streams
_READY: Final = grpc.ChannelConnectivity.READY

# Requests that carry hasleader=true (KV and lease calls that need raft anyway).
_NEEDS_LEADER: Final = frozenset(
    {
        pb.PutRequest,
        pb.DeleteRangeRequest,
        pb.TxnRequest,
        pb.CompactionRequest,
        pb.LeaseGrantRequest,
        pb.LeaseRevokeRequest,
        pb.LeaseTimeToLiveRequest,
        pb.LeaseLeasesRequest,
    }
)
_HASLEADER: Final = ("hasleader", "true")


def _retry_backoff() -> Backoff:
    """The pauses between rounds of a call's retries (made on the first retry only)."""
    return Backoff(_BACKOFF, _BACKOFF_MAX, jitter=_JITTER)


# Seconds unary calls carry hasleader after trouble (require_leader=None).
_GUARD_AFTER_TROUBLE: Final = 30.0


_live: weakref.WeakSet[Transport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A gRPC channel cannot be used across fork(): mark every client unusable so
    # that a call raises a clear error instead of hanging (grpc/grpc#32992).
    for transport in list(_live):
        transport.forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


class Transport:
    """Owns the channels, the stubs and the auth token of one client."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.state = State.UNOPENED
        self.forked = False
        self.metadata: tuple[tuple[str, str], ...] | None = None
        self._leader_metadata: tuple[tuple[str, str], ...] = (_HASLEADER,)
        #: until when (time.monotonic) unary calls carry hasleader (require_leader=None)
        self._guard_until = 0.0
        self.members: list[Member] = []
        #: which endpoint the latest stream of each method (e.g.
        #: ``/etcdserverpb.Watch/Watch``) was opened on
        self.stream_members: dict[str, Endpoint] = {}
        self._credentials: grpc.ChannelCredentials | None = None
        self._open_lock: asyncio.Lock | None = None
        self.token = _token.Token(config, self._send_credentials, self._set_token)
        self._syncer: asyncio.Task[None] | None = None
        #: the streams opened (watch, keep-alive, snapshot, ...), for close()
        self.streams: weakref.WeakSet[Any] = weakref.WeakSet()
        self._released = False
        self.chooser = Chooser(self)
        # The stubs exist from the start: their methods pick a member when
        # called, and unary() opens the transport first.
        router = cast(grpc.aio.Channel, Router(self))
        self.kv = pb.KVStub(router)
        self.watch = pb.WatchStub(router)
        self.lease = pb.LeaseStub(router)
        self.cluster = pb.ClusterStub(router)
        self.maintenance = pb.MaintenanceStub(router)
        self.auth = pb.AuthStub(router)
        # Authenticate takes Credentials too, so the password stays wrapped.
        self.auth.Authenticate = cast(
            Any,
            Method(
                self,
                "unary_unary",
                "/etcdserverpb.Auth/Authenticate",
                {
                    "request_serializer": _token.serialize_authenticate,
                    "response_deserializer": pb.AuthenticateResponse.FromString,
                },
            ),
        )
        self.lock = pb.LockStub(router)
        self.election = pb.ElectionStub(router)
        _live.add(self)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self, *, dial: bool = True) -> None:
        """Create the channels and stubs (once), and authenticate if configured.

        With ``connect_timeout`` configured (and *dial*), the opening call then
        waits up to that long for a first connection (ConnectionFailedError);
        the client stays open either way.
        """
        self.check_usable()
        if self._is_open():
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            self.check_usable()
            if self._is_open():
                return
            if self.config.tls is not None:
                self._credentials = self.config.tls._credentials()  # reads the files once
            dial_timeout = self.config.connect_timeout if dial else None
            # Channels connect on the first call (which connects every member, for
            # failover), not here: opening a client sends nothing.
            self.members = [self.new_member(ep) for ep in self.config.endpoints]
            self.state = State.OPENED
            if dial_timeout is not None:
                await self.chooser.connected_member(dial_timeout)
            try:
                if self.config.username is not None:
                    await self.token.refresh()
                if self.config.auto_sync_interval is not None:
                    self._syncer = asyncio.get_running_loop().create_task(
                        _autosync.sync_loop(self, self.config.auto_sync_interval),
                        name="aetcd-auto-sync",
                    )
            except BaseException:
                await self.close()
                raise

    async def wait_connected(self, timeout: float | None) -> Endpoint:
        """Open, then wait (up to *timeout* s, ``None``: no limit) until some
        member's connection is up; the endpoint that connected.

        Raises :class:`aetcd.ConnectionFailedError` when none connects in time,
        at once when every member refuses our TLS handshake.
        """
        await self.open(dial=False)
        return (await self.chooser.connected_member(timeout)).endpoint

    def new_member(self, endpoint: Endpoint) -> Member:
        """A member for *endpoint*, on a channel of its own (not connected yet)."""
        return Member(endpoint, make_channel(self.config, endpoint, self._credentials))

    def _is_open(self) -> bool:
        return self.state is State.OPENED

    def shut(self) -> None:
        """Refuse calls from now on (ClientClosedError); :meth:`close` then releases."""
        self.state = State.CLOSED

    async def close(self) -> None:
        """Close the channels; pending calls fail, later calls raise ClientClosedError.

        The client closes its services (streams, keep-alives, coalescers) first.
        """
        self.state = State.CLOSED
        if self._released:
            return
        self._released = True
        await self.chooser.close()
        task, self._syncer = self._syncer, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        members, self.members = self.members, []
        if not self.forked:
            for member in members:
                await member.channel.close(grace=None)
            if any(call.cancelled() for call in list(self.streams)):
                # gRPC delivers the last event of a cancelled stream later,
                # from its poller thread: let it arrive while the loop runs, so
                # that closing the loop next loses nothing and logs no error.
                await asyncio.sleep(_CANCEL_DRAIN)

    def check_usable(self) -> None:
        """Raise :class:`aetcd.ClientClosedError` if the client is closed or was forked."""
        if self.forked:
            raise ClientClosedError(
                "this client was created in another process; gRPC channels do not survive "
                "fork(): create a new aetcd.Client in the child process"
            )
        if self.state is State.CLOSED:
            raise ClientClosedError("the client is closed; create a new aetcd.Client")

    @property
    def endpoints(self) -> list[Endpoint]:
        """The endpoints in use (the configured ones, or the last auto-synced list)."""
        if self.members:
            return [m.endpoint for m in self.members]
        return list(self.config.endpoints)

    # -- choosing a member (see _members) ---------------------------------------

    def pick(self, avoid: Iterable[Member] = ()) -> Member:
        """The member for the next call (see :meth:`Chooser.pick`)."""
        return self.chooser.pick(avoid)

    # -- calls -------------------------------------------------------------------

    def deadline(self, timeout: float | None) -> float | None:
        """The per-call timeout in seconds (``None``: the client's default)."""
        if timeout is None:
            return self.config.timeout
        return to_timeout(timeout)

    def _set_token(self, token: str | None) -> None:
        self.metadata = None if token is None else (("token", token),)
        self._leader_metadata = (*(self.metadata or ()), _HASLEADER)

    def note_trouble(self) -> None:
        """Something failed (a call, a stream, a member): guard unary calls with
        ``hasleader`` for a while (``require_leader=None``)."""
        self._guard_until = time.monotonic() + _GUARD_AFTER_TROUBLE

    def require_leader(self) -> bool:
        """Whether KV and lease calls carry ``hasleader`` right now."""
        mode = self.config.require_leader
        if mode is not None:
            return mode
        return self._guard_until != 0.0 and time.monotonic() < self._guard_until

    def _metadata_for(self, request: Any) -> tuple[tuple[str, str], ...] | None:
        if self.metadata is not None and type(request) is Credentials:
            # Authenticate never carries the token it replaces: etcd before 3.5
            # checks any token a request carries, so an expired one would make
            # the refresh itself fail with "invalid auth token" (etcd #12165;
            # Go's refreshToken clears the token first for the same reason).
            return None
        if self._guard_until == 0.0 and self.config.require_leader is None:
            return self.metadata  # never guarded yet: nothing to look at per request
        kind = type(request)
        if (
            kind in _NEEDS_LEADER or (kind is pb.RangeRequest and not request.serializable)
        ) and self.require_leader():
            return self._leader_metadata
        return self.metadata

    def unary(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        timeout: float | None,
        *,
        write: bool,
    ) -> Awaitable[T]:
        """Run one unary RPC with the client's deadline, token and retry policy.

        Reads are retried on transient failures until the deadline passes. A
        write is never retried unless the server proves it was not applied (no
        leader, an expired token, ...); a write that failed in transit raises
        :class:`aetcd.OutcomeUnknownError`. (A plain function returning the
        call's awaitable: one coroutine less per call on the hot path.)
        """
        t = self.deadline(timeout)
        if self.state is not State.OPENED or self.forked:
            return self._open_and_call(method, request, t, write)
        return self._call(method, request, t, write=write, refresh=True)

    async def _open_and_call(
        self, method: Callable[..., Awaitable[T]], request: Any, timeout: float | None, write: bool
    ) -> T:
        await self.open()
        return await self._call(method, request, timeout, write=write, refresh=True)

    async def _call(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        timeout: float | None,
        *,
        write: bool,
        refresh: bool,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        routed = isinstance(method, Method)
        split = not write and routed and len(self.members) > 1 and timeout is not None
        per_attempt = max(_MIN_ATTEMPT, timeout / 3) if split and timeout is not None else None
        refreshed = not refresh
        tried: list[Member] = []
        backoff: Backoff | None = None  # see _retry_backoff
        error: EtcdError | None = None
        while True:
            member: Member | None = None
            if routed:
                member = self.chooser.pick(tried)
                if member.state() is not _READY:
                    member = await self.chooser.ready_member(deadline, tried, write=write)
                if member in tried:
                    # Every connected member failed once: back off before the next round.
                    assert error is not None
                    tried.clear()
                    backoff = backoff or _retry_backoff()
                    await backoff.pause(deadline, error)
                    continue
                call = member.callable(cast(Method, method))
            else:
                call = method
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                # Never send with a deadline that has passed (gRPC would get a
                # fresh one): this attempt was not sent, and an earlier one of a
                # write was provably not applied, so the error is definite.
                raise not_sent(write, "the deadline passed before the call was sent") from error
            attempt = remaining
            if per_attempt is not None and remaining is not None:
                attempt = min(remaining, per_attempt)
            try:
                result: T = await call(
                    request,
                    timeout=attempt,
                    metadata=self._metadata_for(request),
                    wait_for_ready=True,
                )
            except grpc.aio.AioRpcError as exc:
                error = _from_grpc(exc, write=write)
                error.__cause__ = exc
                if member is not None:
                    self.chooser.judge(member, exc, error)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self.state is State.CLOSED and task is not None and not task.cancelling():
                    # close() cancelled the call, not our caller: say so.
                    if write:
                        raise OutcomeUnknownError(
                            "the client was closed while this write was in flight"
                        ) from None
                    raise ClientClosedError("the client was closed during this call") from None
                raise
            else:
                if member is not None:
                    self.chooser.trust(member)
                return result
            # -- decide whether another attempt can help, and is safe
            if (
                not refreshed
                and isinstance(error, AuthenticationError)
                and error.message in _token.REFRESH_TOKEN
                and self.config.username is not None
            ):
                # Refused before it was applied: safe for writes too. The
                # refresh runs within this call's deadline, not a fresh one.
                refreshed = True
                left = None if deadline is None else deadline - loop.time()
                try:
                    await self.token.refresh(left)
                except DeadlineExceededError as exc:
                    what = " (the write was refused, not applied)" if write else ""
                    raise DeadlineExceededError(
                        f"the deadline passed while refreshing the expired auth token{what}"
                    ) from exc
                continue
            if write:
                # Only a refusal before raft (errors.py's list) proves it was not applied.
                if error.message not in NOT_APPLIED:
                    raise error
            elif not self._retryable(error, member):
                raise error
            if member is None:
                backoff = backoff or _retry_backoff()
                await backoff.pause(deadline, error)
            elif deadline is not None and loop.time() >= deadline:
                raise error
            else:
                tried.append(member)

    def _retryable(self, error: EtcdError, member: Member | None) -> bool:
        if error.retryable:
            return True
        # A member dropped by auto-sync cancels its calls: another member can serve.
        return (
            error.code is grpc.StatusCode.CANCELLED
            and member is not None
            and member not in self.members
        )

    # -- streams -----------------------------------------------------------------

    async def stream_metadata(self, timeout: float | None = None) -> tuple[tuple[str, str], ...]:
        """Metadata for opening a watch or keep-alive stream, once a member is connected.

        Waits (up to *timeout*, ``None``: no limit) until some member's channel
        is connected, so that the stream opened next goes to a live member
        rather than queueing on one that may never come back; raises
        :class:`aetcd.ConnectionFailedError` if every member refuses the TLS
        handshake. The metadata carries ``hasleader=true``, so a member cut off
        from its cluster cancels the stream instead of keeping it silent
        forever, and the current token.
        """
        if self.state is not State.OPENED or self.forked:
            await self.open()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.pick().state() is not _READY:
            await self.chooser.raise_if_tls_failed()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break  # the stream's own deadline reports it
            await self.chooser.state_change(remaining)
        return self._leader_metadata

    # -- auth (see _token) -------------------------------------------------------

    def _send_credentials(
        self, request: Credentials, timeout: float | None
    ) -> Awaitable[pb.AuthenticateResponse]:
        """The Authenticate call of :meth:`Token.refresh`: retried like a read, and
        never itself refreshing the token."""
        method = cast(Callable[..., Awaitable[pb.AuthenticateResponse]], self.auth.Authenticate)
        return self._call(method, request, timeout, write=False, refresh=False)

    async def refresh_token(self) -> None:
        """Re-authenticate (streams call this after an auth error before reopening)."""
        if self.config.username is not None:
            await self.token.refresh()

    # -- endpoint auto-sync (see _autosync) ----------------------------------------

    async def sync_endpoints(self) -> list[Endpoint]:
        """Replace the endpoint list with the members' advertised client URLs
        (see :func:`aetcd._autosync.sync_endpoints`); the new list."""
        return await _autosync.sync_endpoints(self)
