"""Launch several real etcd processes on loopback as one cluster.

Each member is an :class:`~aetcd.testing.EtcdServer` on its own ports and data
directory; the leader is found through etcd's JSON gateway, so nothing here needs
the aetcd client.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from . import _host, _process
from ._host import HOST
from ._tls import ServerTLS
from .server import PORT_ATTEMPTS, EtcdServer, EtcdStartError

__all__ = ["EtcdCluster"]


@dataclass(frozen=True)
class _Status:
    member: EtcdServer
    member_id: int
    leader_id: int
    raft_term: int


class EtcdCluster:
    """``size`` real etcd members forming one cluster on loopback.

    Members are :class:`EtcdServer` instances named ``m0..m{size-1}``, each with its own
    ports and data directory, sharing one ``--initial-cluster`` list and a unique
    cluster token. They start concurrently; entering the context waits until every
    member is healthy (which needs a quorum, hence the concurrent start).
    """

    def __init__(
        self,
        size: int = 3,
        *,
        extra_args: Sequence[str] = (),
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        fsync: bool = False,
        name_prefix: str = "m",
        tls: ServerTLS | None = None,
    ) -> None:
        """Configure (but do not start) the cluster; options apply to every member.

        ``tls`` serves every member's client port over HTTPS (one certificate for all:
        give it the ``127.0.0.1`` IP SAN, or a host name and a server-name override).
        """
        if size < 1:
            raise ValueError("a cluster needs at least one member")
        self.size = size
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.fsync = fsync
        self.name_prefix = name_prefix
        self.tls = tls
        self._binary = binary
        self._members: list[EtcdServer] = []
        self._ports: list[int] = []
        self._started = False

    @property
    def members(self) -> list[EtcdServer]:
        """Member handles, in ``m0..`` order (a copy; the handles themselves are live)."""
        return list(self._members)

    @property
    def endpoints(self) -> list[str]:
        """``127.0.0.1:PORT`` client endpoints of all members, running or not."""
        return [member.endpoint for member in self._members]

    def __repr__(self) -> str:
        return f"<EtcdCluster size={self.size} endpoints={self.endpoints if self._members else []}>"

    def _build_members(self) -> None:
        self._ports = _host.reserve_ports(2 * self.size)
        names = [f"{self.name_prefix}{i}" for i in range(self.size)]
        peer_ports = self._ports[self.size :]
        initial = ",".join(
            f"{name}=http://{HOST}:{port}" for name, port in zip(names, peer_ports, strict=True)
        )
        token = f"aetcd-cluster-{secrets.token_hex(6)}"
        self._members = [
            EtcdServer(
                name=name,
                extra_args=self.extra_args,
                binary=self._binary,
                startup_timeout=self.startup_timeout,
                fsync=self.fsync,
                client_port=client_port,
                peer_port=peer_port,
                initial_cluster=initial,
                initial_cluster_token=token,
                tls=self.tls,
            )
            for name, client_port, peer_port in zip(
                names, self._ports[: self.size], peer_ports, strict=True
            )
        ]

    async def _discard_members(self) -> None:
        # SIGKILL first: the data is thrown away, and a graceful stop of all members at
        # once costs seconds (the leader tries to hand leadership to a stopping peer).
        members, self._members = self._members, []
        try:
            for member in members:
                member.kill()
            await asyncio.gather(*(member.aclose() for member in members))
        finally:
            _host.release_ports(self._ports)
            self._ports = []

    async def start(self) -> None:
        """Start all members concurrently and wait until each is healthy.

        If a port turned out to be taken, the whole cluster is rebuilt on fresh ports
        (up to 3 attempts). On failure every member is gone and the first
        :class:`EtcdStartError` is raised.
        """
        if self._started:
            raise RuntimeError(f"{self!r} was already started")
        self._started = True
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._build_members()
            try:
                async with asyncio.TaskGroup() as group:
                    for member in self._members:
                        group.create_task(member.start())
                return
            except BaseExceptionGroup as group_error:
                await asyncio.shield(self._discard_members())
                errors = [e for e in _leaves(group_error) if isinstance(e, EtcdStartError)]
                if not errors:
                    raise
                if attempt < PORT_ATTEMPTS and any(e.address_in_use for e in errors):
                    continue
                raise errors[0] from None
            except BaseException:
                await asyncio.shield(self._discard_members())
                raise

    async def aclose(self) -> None:
        """Kill every member and remove all temporary files; idempotent."""
        await self._discard_members()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.aclose())

    def start_sync(self) -> None:
        """:meth:`start` from synchronous code (private loop in a helper thread)."""
        _process.run_sync(self.start)

    def close_sync(self) -> None:
        """:meth:`aclose` from synchronous code."""
        _process.run_sync(self.aclose)

    def __enter__(self) -> Self:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()

    async def _status(self, member: EtcdServer, timeout: float) -> _Status | None:
        try:
            status = await member.gateway("/v3/maintenance/status", timeout=timeout)
            header = status["header"]
            return _Status(
                member=member,
                member_id=int(header["member_id"]),
                leader_id=int(status.get("leader", 0)),
                raft_term=int(header.get("raft_term", 0)),
            )
        except (OSError, TimeoutError, ValueError, KeyError, TypeError):
            return None

    async def leader(self, timeout: float = 10.0) -> EtcdServer:
        """Return the member that currently leads, waiting up to ``timeout`` for one.

        Asks each running, unpaused member for ``/v3/maintenance/status`` over the JSON
        gateway and picks a member that reports itself as leader (the highest raft term
        wins should a deposed leader not know yet). Raises :class:`TimeoutError`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            candidates = [m for m in self._members if m.running and not m.paused]
            statuses = await asyncio.gather(*(self._status(m, 1.0) for m in candidates))
            leaders = [s for s in statuses if s is not None and s.member_id == s.leader_id]
            if leaders:
                return max(leaders, key=lambda s: s.raft_term).member
            if loop.time() >= deadline:
                raise TimeoutError(f"no leader elected in {self!r} within {timeout:g}s")
            await asyncio.sleep(0.1)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out
