"""The members of the cluster as the transport sees them: one gRPC channel per
endpoint, the choice of member for each call, suspicion and probes.

The member choice is made here rather than by gRPC's balancer, so the client
knows which member served (or failed) a call:

* Calls go round robin to members whose channel is connected (gRPC state
  READY). A member whose call timed out, whose connection broke, or that said
  it has no leader is *suspect*: it gets no calls while a healthy member is
  connected, and a probe (``Status`` every second) clears it once it answers
  with a leader again.
* When no member is connected, a call waits (within its deadline) for the first
  one that is. If every member failed its TLS handshake the call fails at once
  with :class:`aetcd.ConnectionFailedError` (a configuration error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol, cast

import grpc
import grpc.aio

from ._state import State, not_sent
from ._wire import messages as pb
from .config import TLS, ClientConfig, Endpoint
from .errors import (
    ClientClosedError,
    ConnectionFailedError,
    DeadlineExceededError,
    EtcdError,
    NoLeaderError,
)

_log = logging.getLogger("aetcd")

_PROBE_INTERVAL: Final = 1.0  # how often suspect members are asked for their status
_PROBE_TIMEOUT: Final = 1.0
# What a failed TLS handshake looks like in gRPC's connection error.
# Under TLS 1.3 the client finishes its side of the handshake before the
# server checks the client certificate; the server's refusal then arrives as
# an alert gRPC reports only as undecryptable data.
_TLS_FAILURE: Final = re.compile(
    r"(?i)handshake|verification check failed|certificate|TSI_DATA_CORRUPTED"
)
_TLS_REFUSED_AFTER_HANDSHAKE: Final = (
    " (the server refused the connection after the TLS handshake: a server that"
    " requires a client certificate does that when none is given or its CA is not"
    " trusted)"
)
_TLS_CONFIRM: Final = 0.5  # a TLS failure must last this long to be a configuration error
# Failures that say something about the cluster (not the request): they turn on
# the hasleader guard of require_leader=None.
_TROUBLE: Final = frozenset(
    {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN}
)
_READY: Final = grpc.ChannelConnectivity.READY
_FAILED: Final = grpc.ChannelConnectivity.TRANSIENT_FAILURE


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

    def callable(self, method: Method) -> Any:
        """*method* bound to this member's channel (cached)."""
        bound = self._callables.get(method.path)
        if bound is None:
            # Exactly what the generated stub passed (serializers, and whatever
            # else grpcio-tools' code hands a channel): aetcd adds nothing.
            bound = getattr(self.channel, method.kind)(method.path, **method.options)
            self._callables[method.path] = bound
        return bound


class Host(Protocol):
    """What this module needs of its transport (:class:`aetcd._channel.Transport`),
    and all it touches: the chooser reads the members and the client's state,
    probes through the Maintenance stub and reports trouble; a stub method picks
    a member and records the stream it opened."""

    config: ClientConfig
    members: list[Member]
    state: State
    forked: bool
    metadata: tuple[tuple[str, str], ...] | None
    maintenance: pb.MaintenanceStub
    stream_members: dict[str, Endpoint]
    streams: weakref.WeakSet[Any]

    @property
    def endpoints(self) -> list[Endpoint]: ...

    def check_usable(self) -> None: ...

    def note_trouble(self) -> None: ...

    def pick(self, avoid: Iterable[Member] = ()) -> Member: ...


class Method:
    """A stub method that picks a member each time it is called."""

    __slots__ = ("kind", "options", "path", "transport")

    def __init__(self, transport: Host, kind: str, path: str, options: dict[str, Any]) -> None:
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


class Router:
    """What the generated stubs are built on instead of a channel: each of
    their methods becomes a :class:`Method` that chooses a member per call."""

    def __init__(self, transport: Host) -> None:
        self._t = transport

    def _method(self, kind: str, path: str, kwargs: dict[str, Any]) -> Method:
        return Method(
            self._t,
            kind,
            path,
            kwargs,
        )

    def unary_unary(self, method: str, **kwargs: Any) -> Method:
        return self._method("unary_unary", method, kwargs)

    def unary_stream(self, method: str, **kwargs: Any) -> Method:
        return self._method("unary_stream", method, kwargs)

    def stream_unary(self, method: str, **kwargs: Any) -> Method:
        return self._method("stream_unary", method, kwargs)

    def stream_stream(self, method: str, **kwargs: Any) -> Method:
        return self._method("stream_stream", method, kwargs)


class Chooser:
    """Which member a call goes to: round robin, suspicion, probes, waiting for a
    connection, and telling a TLS misconfiguration from a member restarting."""

    def __init__(self, transport: Host) -> None:
        self._t = transport
        self._rr = 0
        self._tls_failing_since: float | None = None
        self._prober: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Stop probing (the transport is closing)."""
        task, self._prober = self._prober, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def pick(self, avoid: Iterable[Member] = ()) -> Member:
        """The member for the next call: round robin over the best-placed ones.

        Connected members first (gRPC state READY), and among those the ones
        not in *avoid* (already tried by this call) and not suspect; members
        still connecting or failed only when none is connected.
        """
        members = self._t.members
        if not members:
            self._t.check_usable()
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

    def suspect_member(self, member: Member, reason: str) -> None:
        if len(self._t.members) < 2 or member.suspect or member not in self._t.members:
            return
        if self._t.state is not State.OPENED or self._t.forked:
            return  # closing: no new background work
        member.suspect = True
        _log.info("aetcd: avoiding member %s for now (%s)", member.endpoint.address, reason)
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(
                self._probe_loop(), name="aetcd-member-probe"
            )

    def trust(self, member: Member) -> None:
        if member.suspect:
            member.suspect = False
            _log.info("aetcd: member %s answers again", member.endpoint.address)

    async def _probe_loop(self) -> None:
        """Ask suspect members for their status until each answers with a leader."""
        while True:
            await asyncio.sleep(_PROBE_INTERVAL)
            suspects = [m for m in self._t.members if m.suspect]
            if not suspects:
                return
            await asyncio.gather(*(self._probe(m) for m in suspects))

    async def _probe(self, member: Member) -> None:
        status = member.callable(cast(Method, self._t.maintenance.Status))
        try:
            response = await status(
                pb.StatusRequest(),
                timeout=_PROBE_TIMEOUT,
                metadata=self._t.metadata,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if details.startswith("etcdserver:") and details != "etcdserver: no leader":
                self.trust(member)  # it answers (refusing the probe is its right)
            return
        if response.leader != 0:
            self.trust(member)

    async def ready_member(
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
                self._t.note_trouble()
            await self.raise_if_tls_failed()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise not_sent(write, "no etcd member was reachable within the deadline")
            await self.state_change(remaining)

    async def state_change(self, timeout: float | None) -> None:
        """Wait until some member's channel changes state (or *timeout*, at most 1 s)."""
        members = list(self._t.members)
        if not members:
            self._t.check_usable()
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

    async def raise_if_tls_failed(self) -> None:
        """Fail fast when every member keeps failing our TLS handshake.

        That is a configuration error (wrong CA, missing client certificate,
        server name, a plaintext server): waiting cannot fix it. It must last
        half a second, so a member closing connections while it restarts does
        not count.
        """
        if self._t.config.tls is None and not any(m.endpoint.secure for m in self._t.members):
            return
        members = list(self._t.members)
        if not members or any(m.state(connect=False) is not _FAILED for m in members):
            self._tls_failing_since = None
            return
        details: list[str] = []
        for member in members:
            status = member.callable(cast(Method, self._t.maintenance.Status))
            try:
                # Not wait_for_ready: on a failed channel this returns the last
                # connection error at once, without sending anything.
                await status(pb.StatusRequest(), timeout=_PROBE_TIMEOUT, wait_for_ready=False)
            except grpc.aio.AioRpcError as exc:
                text = exc.details() or ""
                if not _TLS_FAILURE.search(text):
                    self._tls_failing_since = None
                    return
                if "TSI_DATA_CORRUPTED" in text:
                    text += _TLS_REFUSED_AFTER_HANDSHAKE
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

    def judge(self, member: Member, exc: grpc.aio.AioRpcError, error: EtcdError) -> None:
        """Mark *member* suspect when the failure says more about it than about the request."""
        code = exc.code()
        if error.retryable or code in _TROUBLE:
            self._t.note_trouble()
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            self.suspect_member(member, "a call timed out")
        elif isinstance(error, NoLeaderError):
            self.suspect_member(member, "it has no leader")
        elif code is grpc.StatusCode.UNAVAILABLE and not (exc.details() or "").startswith(
            "etcdserver:"
        ):
            self.suspect_member(member, f"connection failed: {exc.details()}")

    async def connected_member(self, timeout: float | None) -> Member:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            member = await self.ready_member(deadline, (), write=False)
        except DeadlineExceededError:
            addresses = ", ".join(e.address for e in self._t.endpoints)
            raise ConnectionFailedError(
                f"no etcd endpoint could be reached within {timeout} s ({addresses})",
                code=grpc.StatusCode.UNAVAILABLE,
            ) from None
        return member
