"""The Client: lifecycle plus the composition of the per-service facades."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from ._channel import State, Transport
from ._coalesce import Coalescer
from .auth import AuthAPI
from .cluster import ClusterAPI
from .config import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TXN_OPS,
    DEFAULT_TIMEOUT,
    TLS,
    ClientConfig,
    Secret,
)
from .kv import KV
from .lease import LeaseAPI
from .maintenance import MaintenanceAPI
from .recipes._shortcuts import RecipesAPI
from .watch import WatchAPI

__all__ = ["Client"]


class Client(KV, LeaseAPI, WatchAPI, ClusterAPI, MaintenanceAPI, AuthAPI, RecipesAPI):
    """An asyncio client for one etcd cluster.

    ``endpoints`` is one address or a list (``host:port``, ``http://host:port``
    or ``https://host:port``; https means TLS with the system roots unless
    ``tls=`` says otherwise). ``timeout`` is the default deadline of every call
    in seconds (``math.inf``: none). ``username``/``password`` turn on etcd auth;
    the token is refreshed automatically. ``max_txn_ops`` and
    ``max_request_bytes`` mirror the server's limits so oversize requests fail
    locally; raise them if your server's flags do. ``namespace="app1/"``
    prefixes every key transparently (KV, txn compares, watches, recipes): the
    client sees and returns keys without it, like Go's ``namespace`` package.

    ``coalesce_reads`` (on by default) sends concurrent ``get`` calls made in
    the same event-loop turn as one read-only txn: far fewer RPCs under load,
    and the reads of one batch are served at one revision (still linearizable).
    ``coalesce_writes=True`` does the same for ``put`` and ``delete``: writes of
    one batch then share one revision; a batch the server rejects is re-sent
    write by write so only the faulty one fails, and a batch whose outcome is
    unknown fails each of its writes with :class:`aetcd.OutcomeUnknownError`.

    Each endpoint gets its own channel; calls go round robin to connected
    members and avoid suspect ones (see ``aetcd._channel``).
    ``auto_sync_interval`` (seconds) refreshes the endpoint list from the
    cluster's member list. ``require_leader`` controls etcd's ``hasleader``
    check on unary calls (see :meth:`aetcd.ClientConfig.build`): by default it
    is sent only while the client has recently seen trouble.

    Use it as ``async with aetcd.Client(...) as client:``, or call methods
    directly (the connection opens on first use) and ``await client.close()``.
    One client holds one gRPC channel; share it between tasks. It cannot be used
    across ``fork()``.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] = "127.0.0.1:2379",
        *,
        username: str | None = None,
        password: str | Secret | None = None,
        tls: TLS | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        keepalive_time: float = 10.0,
        keepalive_timeout: float = 5.0,
        namespace: str | bytes = b"",
        coalesce_reads: bool = True,
        coalesce_writes: bool = False,
        auto_sync_interval: float | None = None,
        require_leader: bool | None = None,
    ) -> None:
        # First of all, the plain password out of this frame's locals (error
        # trackers record them; see aetcd.Secret).
        password = None if password is None else Secret(password)
        self._settings = ClientConfig.build(
            endpoints,
            username=username,
            password=password,
            tls=tls,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_txn_ops=max_txn_ops,
            max_request_bytes=max_request_bytes,
            keepalive_time=keepalive_time,
            keepalive_timeout=keepalive_timeout,
            namespace=namespace,
            auto_sync_interval=auto_sync_interval,
            require_leader=require_leader,
        )
        self._t = Transport(self._settings)
        if type(coalesce_reads) is not bool or type(coalesce_writes) is not bool:
            raise TypeError("coalesce_reads and coalesce_writes must be bool")
        if coalesce_reads:
            self._read_batcher = Coalescer(self._t, write=False)
            self._t.closers.append(self._read_batcher.close)
        if coalesce_writes:
            self._write_batcher = Coalescer(self._t, write=True)
            self._t.closers.append(self._write_batcher.close)

    def __repr__(self) -> str:
        # Also called on a client whose __init__ raised (error trackers, debuggers).
        t: Transport | None = getattr(self, "_t", None)
        if t is None:
            return "<aetcd.Client (not initialised)>"
        eps = [e.address for e in t.endpoints]
        return f"<aetcd.Client endpoints={eps} state={t.state.value}>"

    @property
    def endpoints(self) -> list[str]:
        """The configured endpoint addresses."""
        return [e.address for e in self._t.endpoints]

    @property
    def settings(self) -> ClientConfig:
        """The validated configuration (secrets are left out of its repr).

        (``client.config(prefix)`` is the configuration-mirror recipe.)
        """
        return self._settings

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._t.state is State.CLOSED

    async def connect(self, *, timeout: float | None = None) -> None:
        """Connect now instead of on first use: open the channels, authenticate
        if configured, and wait until at least one endpoint's connection is up
        (like Go's blocking dial with ``DialTimeout``).

        *timeout* defaults to ``connect_timeout``, else the client's call timeout. Raises
        :class:`aetcd.ConnectionFailedError` if no endpoint answers in time (at
        once if every endpoint refuses the TLS handshake), and
        :class:`aetcd.AuthenticationError` for wrong credentials.
        """
        if timeout is None and self._settings.connect_timeout is not None:
            timeout = self._settings.connect_timeout
        await self._t.wait_connected(self._t.deadline(timeout))

    async def close(self) -> None:
        """Close the connection. Later calls raise :class:`aetcd.ClientClosedError`.

        When it returns, nothing of the client is left on the event loop (streams,
        channels, background tasks): the loop can be closed next without errors.
        """
        await self._t.close()

    async def __aenter__(self) -> Self:
        await self._t.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
