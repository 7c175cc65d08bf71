"""The connection: one gRPC channel and one set of stubs per client, the auth
token, the per-call deadline, read retries and error translation.

Every unary RPC of every facade goes through :meth:`Transport.unary`.
"""

from __future__ import annotations

import asyncio
import enum
import os
import random
import socket
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc
import grpc.aio

from ._keys import to_timeout
from ._pb import rpc_pb2, rpc_pb2_grpc, v3election_pb2_grpc, v3lock_pb2_grpc
from .config import ClientConfig
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionFailedError,
    EtcdError,
    from_grpc,
)

T = TypeVar("T")

# Server messages after which a fresh token and one more try can succeed.
_REFRESH_TOKEN: Final = frozenset(
    {
        "etcdserver: invalid auth token",
        "etcdserver: revision of auth store is old",
        "etcdserver: user name is empty",
    }
)
_AUTH_NOT_ENABLED: Final = "etcdserver: authentication is not enabled"
_BACKOFF: Final = 0.025  # seconds between read retries (Go: 25 ms +-10 %)


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


class Transport:
    """Owns the channel, the stubs and the auth token of one client."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.state = State.UNOPENED
        self.forked = False
        self.metadata: tuple[tuple[str, str], ...] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._open_lock: asyncio.Lock | None = None
        self._token_lock: asyncio.Lock | None = None
        self._token_generation = 0
        # Background machinery (keep-alive, watch streams) registers its shutdown
        # here; close() runs these, newest first, before closing the channel.
        self.closers: list[Callable[[], Awaitable[None]]] = []
        _live.add(self)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Create the channel and stubs (once), and authenticate if configured."""
        self._check_usable()
        if self._is_open():
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            self._check_usable()
            if self._is_open():
                return
            channel = self._make_channel()
            self._channel = channel
            self.kv = rpc_pb2_grpc.KVStub(channel)
            self.watch = rpc_pb2_grpc.WatchStub(channel)
            self.lease = rpc_pb2_grpc.LeaseStub(channel)
            self.cluster = rpc_pb2_grpc.ClusterStub(channel)
            self.maintenance = rpc_pb2_grpc.MaintenanceStub(channel)
            self.auth = rpc_pb2_grpc.AuthStub(channel)
            self.lock = v3lock_pb2_grpc.LockStub(channel)
            self.election = v3election_pb2_grpc.ElectionStub(channel)
            self.state = State.OPENED
            if self.config.username is not None:
                try:
                    await self._authenticate()
                except BaseException:
                    await self.close()
                    raise

    def _is_open(self) -> bool:
        return self.state is State.OPENED

    async def close(self) -> None:
        """Close the channel; pending calls fail, later calls raise ClientClosedError."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        errors: list[BaseException] = []
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception as exc:  # close everything, then report
                errors.append(exc)
        channel, self._channel = self._channel, None
        if channel is not None and not self.forked:
            await channel.close(grace=None)
        if errors:
            raise errors[0]

    def _check_usable(self) -> None:
        if self.forked:
            raise ClientClosedError(
                "this client was created in another process; gRPC channels do not survive "
                "fork(): create a new aetcd.Client in the child process"
            )
        if self.state is State.CLOSED:
            raise ClientClosedError("the client is closed; create a new aetcd.Client")

    def _make_channel(self) -> grpc.aio.Channel:
        options = self.config.channel_options()
        target = self._target()
        if self.config.tls is not None:
            return grpc.aio.secure_channel(target, self.config.tls.credentials(), options)
        return grpc.aio.insecure_channel(target, options)

    def _target(self) -> str:
        eps = self.config.endpoints
        if len(eps) == 1:
            return eps[0].address
        # Several endpoints: one channel balancing round robin over their addresses.
        addresses: list[str] = []
        for ep in eps:
            if ep.is_ip:
                addresses.append(ep.address)
                continue
            try:
                infos = socket.getaddrinfo(ep.host, ep.port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ConnectionFailedError(f"cannot resolve endpoint {ep.address}: {exc}") from exc
            for *_, sockaddr in infos:
                host = str(sockaddr[0])
                addresses.append(f"[{host}]:{ep.port}" if ":" in host else f"{host}:{ep.port}")
        if any(a.startswith("[") for a in addresses):
            return "ipv6:" + ",".join(addresses)
        return "ipv4:" + ",".join(addresses)

    # -- calls -------------------------------------------------------------------

    def deadline(self, timeout: float | None) -> float | None:
        """The per-call timeout in seconds (``None``: the client's default)."""
        if timeout is None:
            return self.config.timeout
        return to_timeout(timeout)

    async def unary(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        timeout: float | None,
        *,
        write: bool,
    ) -> T:
        """Run one unary RPC with the client's deadline, token and retry policy.

        Reads are retried on transient failures until the deadline passes. A
        write is never retried unless the server proves it was not applied (an
        expired token); a write that failed in transit raises
        :class:`aetcd.OutcomeUnknownError`.
        """
        if self.state is not State.OPENED or self.forked:
            await self.open()
        t = self.config.timeout if timeout is None else to_timeout(timeout)
        try:
            return await method(request, timeout=t, metadata=self.metadata, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            error = from_grpc(exc, write=write)
            error.__cause__ = exc
        return await self._retry(method, request, t, write, error)

    async def _retry(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        timeout: float | None,
        write: bool,
        error: EtcdError,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        refreshed = False
        while True:
            if (
                not refreshed
                and isinstance(error, AuthenticationError)
                and error.message in _REFRESH_TOKEN
                and self.config.username is not None
            ):
                # The server rejected the request before applying it: safe for writes too.
                refreshed = True
                await self._authenticate()
            elif not write and error.retryable:
                pause = _BACKOFF * random.uniform(0.9, 1.1)
                if deadline is not None and loop.time() + pause >= deadline:
                    raise error
                await asyncio.sleep(pause)
            else:
                raise error
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise error
            try:
                return await method(
                    request, timeout=remaining, metadata=self.metadata, wait_for_ready=True
                )
            except grpc.aio.AioRpcError as exc:
                error = from_grpc(exc, write=write)
                error.__cause__ = exc

    # -- auth --------------------------------------------------------------------

    async def _authenticate(self) -> None:
        """Get a fresh token with the configured user and password."""
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        generation = self._token_generation
        async with self._token_lock:
            if generation != self._token_generation:
                return  # another task refreshed it while we waited
            request = rpc_pb2.AuthenticateRequest(
                name=self.config.username or "", password=self.config.password or ""
            )
            try:
                response = await self.auth.Authenticate(
                    request, timeout=self.config.timeout, wait_for_ready=True
                )
            except grpc.aio.AioRpcError as exc:
                if exc.details() == _AUTH_NOT_ENABLED:
                    # Auth is off on the server (or was just disabled): no token
                    # is needed, as in Go's getToken.
                    self.metadata = None
                    self._token_generation += 1
                    return
                raise from_grpc(exc) from None
            self.metadata = (("token", response.token),)
            self._token_generation += 1

    async def stream_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata for opening a watch or keep-alive stream.

        Carries ``hasleader=true``, so a member cut off from its cluster cancels
        the stream instead of keeping it silent forever, and the current token.
        """
        if self.state is not State.OPENED or self.forked:
            await self.open()
        return (*(self.metadata or ()), ("hasleader", "true"))

    async def refresh_token(self) -> None:
        """Re-authenticate (streams call this after an auth error before reopening)."""
        if self.config.username is not None:
            await self._authenticate()
