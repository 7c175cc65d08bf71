"""The connection: one gRPC channel per endpoint, the choice of member for each
call, the auth token, the per-call deadline, retries and error translation.

Every unary RPC of every facade goes through :meth:`Transport.unary`; streams
(watch, keep-alive, snapshot) pick their member when they are opened.

Failover works like Go's client, with the member choice made here rather than
by gRPC's balancer, so the client knows which member served (or failed) a call:

* Calls go round robin to members whose channel is connected (gRPC state
  READY). A member whose call timed out, whose connection broke, or that said
  it has no leader is *suspect*: it gets no calls while a healthy member is
  connected, and a probe (``Status`` every second) clears it once it answers
  with a leader again. A dead or blackholed member therefore costs at most the
  calls already in flight on it, not one call in N until gRPC's keepalive
  notices (up to ``keepalive_time + keepalive_timeout``).
* When no member is connected, a call waits (within its deadline) for the first
  one that is, instead of queueing on one that may never come back. If every
  member failed its TLS handshake the call fails at once with
  :class:`aetcd.ConnectionFailedError` (a configuration error): never a
  plaintext fallback, never a silent wait until the deadline.
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
import enum
import logging
import os
import random
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, TypeVar, cast

import grpc
import grpc.aio

from ._keys import to_timeout
from ._pb import rpc_pb2, rpc_pb2_grpc, v3election_pb2_grpc, v3lock_pb2_grpc
from .config import TLS, ClientConfig, Endpoint, Secret
from .errors import _NOT_APPLIED as NOT_APPLIED
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    DeadlineExceededError,
    EtcdError,
    NoLeaderError,
    OutcomeUnknownError,
    _from_grpc,
)

T = TypeVar("T")

_log = logging.getLogger("aetcd")

# Server messages after which a fresh token and one more try can succeed.
_REFRESH_TOKEN: Final = frozenset(
    {
        "etcdserver: invalid auth token",
        "etcdserver: revision of auth store is old",
        "etcdserver: user name is empty",
    }
)
_AUTH_NOT_ENABLED: Final = "etcdserver: authentication is not enabled"
_BACKOFF: Final = 0.025  # after a round of failed attempts (Go: 25 ms +-10 %)
_BACKOFF_MAX: Final = 0.5  # doubling per round up to this
_MIN_ATTEMPT: Final = 1.0  # shortest per-attempt deadline of a retried call
_PROBE_INTERVAL: Final = 1.0  # how often suspect members are asked for their status
_PROBE_TIMEOUT: Final = 1.0
_CANCEL_DRAIN: Final = 0.05  # for gRPC to deliver the final events of cancelled streams
# What a failed TLS handshake looks like in gRPC's connection error.
_TLS_FAILURE: Final = re.compile(r"(?i)handshake|verification check failed|certificate")
_TLS_CONFIRM: Final = 0.5  # a TLS failure must last this long to be a configuration error
_READY: Final = grpc.ChannelConnectivity.READY
_FAILED: Final = grpc.ChannelConnectivity.TRANSIENT_FAILURE
_SHUTDOWN: Final = grpc.ChannelConnectivity.SHUTDOWN
# Failures that say something about the cluster (not the request): they turn on
# the hasleader guard of require_leader=None.
_TROUBLE: Final = frozenset(
    {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN}
)

# Requests that carry hasleader=true (KV and lease calls that need raft anyway).
_NEEDS_LEADER: Final = frozenset(
    {
        rpc_pb2.PutRequest,
        rpc_pb2.DeleteRangeRequest,
        rpc_pb2.TxnRequest,
        rpc_pb2.CompactionRequest,
        rpc_pb2.LeaseGrantRequest,
        rpc_pb2.LeaseRevokeRequest,
        rpc_pb2.LeaseTimeToLiveRequest,
        rpc_pb2.LeaseLeasesRequest,
    }
)
_HASLEADER: Final = ("hasleader", "true")
# Seconds unary calls carry hasleader after trouble (require_leader=None).
_GUARD_AFTER_TROUBLE: Final = 30.0


def not_sent(write: bool, reason: str) -> DeadlineExceededError:
    """The error of a call whose deadline passed before it was sent.

    Definite, unlike :class:`aetcd.OutcomeUnknownTimeoutError`: nothing reached
    the server, so a write was not applied and may be retried as it is.
    """
    what = "nothing was sent: the write was not applied" if write else "nothing was sent"
    return DeadlineExceededError(f"{reason} ({what})")


class State(enum.Enum):
    """Lifecycle of a client: calls are only possible while OPENED."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


_live: weakref.WeakSet[Transport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A gRPC channel cannot be used across fork(): mark every client unusable so
    # that a call raises a clear error instead of hanging (grpc/grpc#32992).
    for transport in list(_live):
        transport.forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def make_channel(
    config: ClientConfig,
    endpoint: Endpoint,
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """A new channel to exactly one member, with the client's channel settings.

    TLS is used when the client uses it or the endpoint says ``https://``
    (never downgraded to plaintext), checking the certificate against the
    endpoint's server name (see :class:`aetcd.TLS`). The caller closes it.
    """
    options = config.channel_options(endpoint)
    if credentials is None:
        tls = config.tls
        if tls is None and endpoint.secure:
            tls = TLS()  # https:// alone: the system roots
        if tls is not None:
            credentials = tls._credentials()
    if credentials is not None:
        return grpc.aio.secure_channel(endpoint.address, credentials, options)
    return grpc.aio.insecure_channel(endpoint.address, options)


class Member:
    """One endpoint: its channel, and whether the client trusts it right now."""

    __slots__ = ("__weakref__", "_callables", "channel", "endpoint", "suspect")

    def __init__(self, endpoint: Endpoint, channel: grpc.aio.Channel) -> None:
        self.endpoint = endpoint
        self.channel = channel
        #: a call to it timed out, its connection broke, or it had no leader;
        #: cleared by a successful call or probe
        self.suspect = False
        self._callables: dict[str, Any] = {}

    def __repr__(self) -> str:
        flag = " suspect" if self.suspect else ""
        return f"<aetcd member {self.endpoint.address} {self.state(False).name}{flag}>"

    def state(self, connect: bool = True) -> grpc.ChannelConnectivity:
        """The channel's connectivity (``connect``: start connecting if idle)."""
        return self.channel.get_state(try_to_connect=connect)

    def callable(self, method: _Method) -> Any:
        """*method* bound to this member's channel (cached)."""
        bound = self._callables.get(method.path)
        if bound is None:
            # Exactly what the generated stub passed (serializers, and whatever
            # else grpcio-tools' code hands a channel): aetcd adds nothing.
            bound = getattr(self.channel, method.kind)(method.path, **method.options)
            self._callables[method.path] = bound
        return bound


class _Method:
    """A stub method that picks a member each time it is called."""

    __slots__ = ("kind", "options", "path", "transport")

    def __init__(self, transport: Transport, kind: str, path: str, options: dict[str, Any]) -> None:
        self.transport = transport
        self.kind = kind
        self.path = path
        self.options = options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        member = self.transport.pick()
        self.transport.stream_members[self.path] = member.endpoint
        call = member.callable(self)(*args, **kwargs)
        self.transport.streams.add(call)
        return call


class Credentials:
    """The request of an Authenticate call, with the password kept wrapped.

    A protobuf ``AuthenticateRequest`` would hold the plain password in every
    frame it passes through (and show it in its ``repr``); this is serialised
    straight to bytes by the Authenticate method's serializer instead.
    """

    __slots__ = ("name", "password")

    def __init__(self, name: str, password: Secret) -> None:
        self.name = name
        self.password = password

    def __repr__(self) -> str:
        return f"Credentials(name={self.name!r}, password={self.password!r})"


def _serialize_authenticate(request: Credentials | rpc_pb2.AuthenticateRequest) -> bytes:
    if isinstance(request, Credentials):
        return rpc_pb2.AuthenticateRequest(
            name=request.name, password=request.password.reveal()
        ).SerializeToString()
    return request.SerializeToString()


class _Router:
    """What the generated stubs are built on instead of a channel: each of
    their methods becomes a :class:`_Method` that chooses a member per call."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _method(self, kind: str, path: str, kwargs: dict[str, Any]) -> _Method:
        return _Method(
            self._t,
            kind,
            path,
            kwargs,
        )

    def unary_unary(self, method: str, **kwargs: Any) -> _Method:
        return self._method("unary_unary", method, kwargs)

    def unary_stream(self, method: str, **kwargs: Any) -> _Method:
        return self._method("unary_stream", method, kwargs)

    def stream_unary(self, method: str, **kwargs: Any) -> _Method:
        return self._method("stream_unary", method, kwargs)

    def stream_stream(self, method: str, **kwargs: Any) -> _Method:
        return self._method("stream_stream", method, kwargs)


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
        self._rr = 0
        self._open_lock: asyncio.Lock | None = None
        self._token_lock: asyncio.Lock | None = None
        self._token_generation = 0
        self._tls_failing_since: float | None = None
        self._prober: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        #: the streams opened (watch, keep-alive, snapshot, ...), for close()
        self.streams: weakref.WeakSet[Any] = weakref.WeakSet()
        self._released = False
        # The stubs exist from the start: their methods pick a member when
        # called, and unary() opens the transport first.
        router = cast(grpc.aio.Channel, _Router(self))
        self.kv = rpc_pb2_grpc.KVStub(router)
        self.watch = rpc_pb2_grpc.WatchStub(router)
        self.lease = rpc_pb2_grpc.LeaseStub(router)
        self.cluster = rpc_pb2_grpc.ClusterStub(router)
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(router)
        self.auth = rpc_pb2_grpc.AuthStub(router)
        # Authenticate takes Credentials too, so the password stays wrapped.
        self.auth.Authenticate = cast(
            Any,
            _Method(
                self,
                "unary_unary",
                "/etcdserverpb.Auth/Authenticate",
                {
                    "request_serializer": _serialize_authenticate,
                    "response_deserializer": rpc_pb2.AuthenticateResponse.FromString,
                },
            ),
        )
        self.lock = v3lock_pb2_grpc.LockStub(router)
        self.election = v3election_pb2_grpc.ElectionStub(router)
        _live.add(self)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self, *, dial: bool = True) -> None:
        """Create the channels and stubs (once), and authenticate if configured.

        With ``connect_timeout`` configured (and *dial*), the opening call then
        waits up to that long for a first connection (ConnectionFailedError);
        the client stays open either way.
        """
        self._check_usable()
        if self._is_open():
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            self._check_usable()
            if self._is_open():
                return
            if self.config.tls is not None:
                self._credentials = self.config.tls._credentials()  # reads the files once
            dial_timeout = self.config.connect_timeout if dial else None
            # Channels connect on the first call (which connects every member, for
            # failover), not here: opening a client sends nothing.
            self.members = [self._new_member(ep) for ep in self.config.endpoints]
            self.state = State.OPENED
            if dial_timeout is not None:
                await self._connected_member(dial_timeout)
            try:
                if self.config.username is not None:
                    await self._authenticate()
                if self.config.auto_sync_interval is not None:
                    self._syncer = asyncio.get_running_loop().create_task(
                        self._sync_loop(self.config.auto_sync_interval), name="aetcd-auto-sync"
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
        return (await self._connected_member(timeout)).endpoint

    async def _connected_member(self, timeout: float | None) -> Member:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            member = await self._ready_member(deadline, (), write=False)
        except DeadlineExceededError:
            addresses = ", ".join(e.address for e in self.endpoints)
            raise ConnectionFailedError(
                f"no etcd endpoint could be reached within {timeout} s ({addresses})",
                code=grpc.StatusCode.UNAVAILABLE,
            ) from None
        return member

    def _new_member(self, endpoint: Endpoint) -> Member:
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
        for task in (self._prober, self._syncer):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._prober = self._syncer = None
        members, self.members = self.members, []
        if not self.forked:
            for member in members:
                await member.channel.close(grace=None)
            if any(call.cancelled() for call in list(self.streams)):
                # gRPC delivers the last event of a cancelled stream later,
                # from its poller thread: let it arrive while the loop runs, so
                # that closing the loop next loses nothing and logs no error.
                await asyncio.sleep(_CANCEL_DRAIN)

    def _check_usable(self) -> None:
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

    # -- choosing a member -------------------------------------------------------

    def pick(self, avoid: Iterable[Member] = ()) -> Member:
        """The member for the next call: round robin over the best-placed ones.

        Connected members first (gRPC state READY), and among those the ones
        not in *avoid* (already tried by this call) and not suspect; members
        still connecting or failed only when none is connected.
        """
        members = self.members
        if not members:
            self._check_usable()
            raise ClientClosedError("the client is not open")
        if len(members) == 1:
            return members[0]
        start = self._rr % len(members)
        self._rr += 1
        avoided = set(avoid)
        best = members[start]
        best_rank = 99
        for i in range(len(members)):
            member = members[(start + i) % len(members)]
            rank = (0 if member.state() is _READY else 4) + member.suspect
            if member in avoided:
                rank += 2
            if rank < best_rank:
                best, best_rank = member, rank
        return best

    def _suspect(self, member: Member, reason: str) -> None:
        if len(self.members) < 2 or member.suspect or member not in self.members:
            return
        if self.state is not State.OPENED or self.forked:
            return  # closing: no new background work
        member.suspect = True
        _log.info("aetcd: avoiding member %s for now (%s)", member.endpoint.address, reason)
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(
                self._probe_loop(), name="aetcd-member-probe"
            )

    def _trusted(self, member: Member) -> None:
        if member.suspect:
            member.suspect = False
            _log.info("aetcd: member %s answers again", member.endpoint.address)

    async def _probe_loop(self) -> None:
        """Ask suspect members for their status until each answers with a leader."""
        while True:
            await asyncio.sleep(_PROBE_INTERVAL)
            suspects = [m for m in self.members if m.suspect]
            if not suspects:
                return
            await asyncio.gather(*(self._probe(m) for m in suspects))

    async def _probe(self, member: Member) -> None:
        status = member.callable(cast(_Method, self.maintenance.Status))
        try:
            response = await status(
                rpc_pb2.StatusRequest(),
                timeout=_PROBE_TIMEOUT,
                metadata=self.metadata,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if details.startswith("etcdserver:") and details != "etcdserver: no leader":
                self._trusted(member)  # it answers (refusing the probe is its right)
            return
        if response.leader != 0:
            self._trusted(member)

    async def _ready_member(
        self, deadline: float | None, avoid: Sequence[Member], *, write: bool
    ) -> Member:
        """A member to send to now, waiting (until *deadline*) for one to connect."""
        loop = asyncio.get_running_loop()
        while True:
            member = self.pick(avoid)
            state = member.state()
            if state is _READY:
                return member
            if state is _FAILED:
                self.note_trouble()
            await self._raise_if_tls_failed()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise not_sent(write, "no etcd member was reachable within the deadline")
            await self._state_change(remaining)

    async def _state_change(self, timeout: float | None) -> None:
        """Wait until some member's channel changes state (or *timeout*, at most 1 s)."""
        members = list(self.members)
        if not members:
            self._check_usable()
            return
        waiters = [
            asyncio.ensure_future(m.channel.wait_for_state_change(m.state(connect=False)))
            for m in members
        ]
        try:
            bound = 1.0 if self._tls_failing_since is None else _TLS_CONFIRM / 2
            if timeout is not None:
                bound = min(timeout, bound)
            await asyncio.wait(waiters, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _raise_if_tls_failed(self) -> None:
        """Fail fast when every member keeps failing our TLS handshake.

        That is a configuration error (wrong CA, missing client certificate,
        server name, a plaintext server): waiting cannot fix it. It must last
        half a second, so a member closing connections while it restarts does
        not count.
        """
        if self._credentials is None and not any(m.endpoint.secure for m in self.members):
            return
        members = list(self.members)
        if not members or any(m.state(connect=False) is not _FAILED for m in members):
            self._tls_failing_since = None
            return
        details: list[str] = []
        for member in members:
            status = member.callable(cast(_Method, self.maintenance.Status))
            try:
                # Not wait_for_ready: on a failed channel this returns the last
                # connection error at once, without sending anything.
                await status(rpc_pb2.StatusRequest(), timeout=_PROBE_TIMEOUT, wait_for_ready=False)
            except grpc.aio.AioRpcError as exc:
                text = exc.details() or ""
                if not _TLS_FAILURE.search(text):
                    self._tls_failing_since = None
                    return
                details.append(f"{member.endpoint.address}: {text}")
            else:
                self._tls_failing_since = None
                return  # it connected meanwhile
        now = asyncio.get_running_loop().time()
        if self._tls_failing_since is None:
            self._tls_failing_since = now
        if now - self._tls_failing_since < _TLS_CONFIRM:
            return
        raise ConnectionFailedError(
            "TLS handshake failed with every endpoint (check the CA, client certificate "
            "and server name in aetcd.TLS): " + "; ".join(details),
            code=grpc.StatusCode.UNAVAILABLE,
            retryable=False,
        )

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
        kind = type(request)
        if (
            kind in _NEEDS_LEADER or (kind is rpc_pb2.RangeRequest and not request.serializable)
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
        routed = isinstance(method, _Method)
        split = not write and routed and len(self.members) > 1 and timeout is not None
        per_attempt = max(_MIN_ATTEMPT, timeout / 3) if split and timeout is not None else None
        refreshed = not refresh
        tried: list[Member] = []
        backoff = _BACKOFF
        error: EtcdError | None = None
        while True:
            member: Member | None = None
            if routed:
                member = self.pick(tried)
                if member.state() is not _READY:
                    member = await self._ready_member(deadline, tried, write=write)
                if member in tried:
                    # Every connected member failed once: back off before the next round.
                    assert error is not None
                    tried.clear()
                    await self._pause(backoff, deadline, error)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
                call = member.callable(cast(_Method, method))
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
                    self._judge(member, exc, error)
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
                    self._trusted(member)
                return result
            # -- decide whether another attempt can help, and is safe
            if (
                not refreshed
                and isinstance(error, AuthenticationError)
                and error.message in _REFRESH_TOKEN
                and self.config.username is not None
            ):
                # Refused before it was applied: safe for writes too. The
                # refresh runs within this call's deadline, not a fresh one.
                refreshed = True
                left = None if deadline is None else deadline - loop.time()
                try:
                    await self._authenticate(left)
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
                await self._pause(backoff, deadline, error)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            elif deadline is not None and loop.time() >= deadline:
                raise error
            else:
                tried.append(member)

    @staticmethod
    async def _pause(backoff: float, deadline: float | None, error: EtcdError) -> None:
        """Sleep ~*backoff* before another attempt, or raise *error* if the deadline comes first."""
        pause = backoff * random.uniform(0.9, 1.1)
        if deadline is not None and asyncio.get_running_loop().time() + pause >= deadline:
            raise error
        await asyncio.sleep(pause)

    def _retryable(self, error: EtcdError, member: Member | None) -> bool:
        if error.retryable:
            return True
        # A member dropped by auto-sync cancels its calls: another member can serve.
        return (
            error.code is grpc.StatusCode.CANCELLED
            and member is not None
            and member not in self.members
        )

    def _judge(self, member: Member, exc: grpc.aio.AioRpcError, error: EtcdError) -> None:
        """Mark *member* suspect when the failure says more about it than about the request."""
        code = exc.code()
        if error.retryable or code in _TROUBLE:
            self.note_trouble()
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            self._suspect(member, "a call timed out")
        elif isinstance(error, NoLeaderError):
            self._suspect(member, "it has no leader")
        elif code is grpc.StatusCode.UNAVAILABLE and not (exc.details() or "").startswith(
            "etcdserver:"
        ):
            self._suspect(member, f"connection failed: {exc.details()}")

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
            await self._raise_if_tls_failed()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break  # the stream's own deadline reports it
            await self._state_change(remaining)
        return self._leader_metadata

    # -- auth --------------------------------------------------------------------

    async def _authenticate(self, timeout: float | None = None) -> None:
        """Get a fresh token with the configured user and password.

        *timeout*: the caller's remaining time, which bounds waiting for a
        refresh another task runs too (default: the client's timeout).
        """
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        if timeout is None:
            timeout = self.config.timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        generation = self._token_generation
        try:
            async with asyncio.timeout_at(deadline):
                await self._token_lock.acquire()
        except TimeoutError:
            raise DeadlineExceededError(
                "the deadline passed while another task was refreshing the auth token"
            ) from None
        try:
            if generation != self._token_generation:
                return  # another task refreshed it while we waited
            request = Credentials(self.config.username or "", self.config.password or Secret(""))
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                # Retried like a read (a spare token is harmless); never refreshed.
                response = await self._call(
                    self.auth.Authenticate, request, left, write=False, refresh=False
                )
            except EtcdError as exc:
                if exc.message == _AUTH_NOT_ENABLED:
                    # Auth is off on the server (or was just disabled): no token
                    # is needed, as in Go's getToken.
                    self._set_token(None)
                    self._token_generation += 1
                    return
                exc.__cause__ = None  # the gRPC error adds nothing, and stays out of logs
                raise
            self._set_token(response.token)
            self._token_generation += 1
        finally:
            self._token_lock.release()

    async def refresh_token(self) -> None:
        """Re-authenticate (streams call this after an auth error before reopening)."""
        if self.config.username is not None:
            await self._authenticate()

    # -- endpoint auto-sync --------------------------------------------------------

    async def _sync_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync_endpoints()
            except EtcdError as exc:
                _log.info("aetcd: endpoint auto-sync failed (%s); keeping the current list", exc)

    async def sync_endpoints(self) -> list[Endpoint]:
        """Replace the endpoint list with the members' advertised client URLs.

        Learners and members not started yet are left out (as in Go's
        ``Sync``), and so are URLs whose scheme does not match this client's
        TLS setting. Members that left are closed (their streams move to
        others); the list is never emptied. Returns the new list.
        """
        response = await self.unary(
            self.cluster.MemberList, rpc_pb2.MemberListRequest(), None, write=False
        )
        secure = self._credentials is not None
        found: list[Endpoint] = []
        for m in response.members:
            if not m.name or m.isLearner:
                continue
            for url in m.clientURLs:
                try:
                    ep = Endpoint.parse(url)
                except (EtcdError, TypeError):
                    continue
                if ep.secure == secure and ep not in found:
                    found.append(ep)
        if not found or self.state is not State.OPENED:
            return self.endpoints
        keep: dict[str, Member | None] = {m.endpoint.address: m for m in self.members}
        new = [keep.pop(ep.address, None) or self._new_member(ep) for ep in found]
        for member in new:
            member.state(connect=True)
        self.members = new
        for gone in filter(None, keep.values()):
            _log.info("aetcd: endpoint %s left the member list", gone.endpoint.address)
            await gone.channel.close(grace=None)
        return self.endpoints
