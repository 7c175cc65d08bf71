"""A fault-injecting TCP proxy between a client and etcd members, in its own process.

``async with FaultProxy(cluster.endpoints) as proxy:`` starts a new Python
process (:mod:`aetcd.testing._proxy_process`, standard library only) with one
listening port on ``127.0.0.1`` per upstream member; point the client at
``proxy.endpoints`` and inject faults per member (an index) or on all of them
(no index)::

    await proxy.blackhole(0)          # read and discard both ways; sockets stay open
    await proxy.delay(1, 0.2, 0.1)    # forward each chunk 200 ms +- 100 ms late, in order
    await proxy.reset()               # RST every current connection (SO_LINGER 0)
    await proxy.refuse(2)             # close the listener: new connections are refused
    await proxy.passthrough()         # back to normal (and listening again)
    await proxy.stats()               # per member: mode, open/accepted connections, bytes

The verbs mirror etcd's ``pkg/proxy``. A separate process keeps the proxy
running when the test's own process is paused, and keeps its CPU use out of
the client's event loop. It is controlled over a Unix
socket (one JSON line per command and per reply) and exits when its standard
input closes, so it dies with the process that started it even after a crash.

Bounded and loopback-only: it listens on ``127.0.0.1`` only, refuses upstreams
that are not loopback addresses, holds at most 512 connections per member and
4 MiB of delayed data per direction (reading pauses beyond that), and delays
at most 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import _process
from ._host import HOST
from ._proxy_process import SCRIPT, loopback

__all__ = ["FaultProxy", "ProxyError"]


class ProxyError(RuntimeError):
    """The proxy process failed to start, died, or refused a command."""


class FaultProxy:
    """A fault proxy process in front of *upstreams* (``host:port`` of each member).

    Use as ``async with FaultProxy(endpoints) as proxy:``; ``proxy.endpoints``
    are the addresses to give the client, in the same order. Every verb takes
    the index of one member, or none for all of them, and returns once the
    proxy applied it. The process is killed on exit (and at interpreter exit,
    and by itself when this process dies).
    """

    def __init__(self, upstreams: Sequence[str], *, startup_timeout: float = 15.0) -> None:
        if isinstance(upstreams, str):
            upstreams = [upstreams]
        self.upstreams = [f"{h}:{p}" for h, p in (loopback(u) for u in upstreams)]
        if not self.upstreams:
            raise ValueError("at least one upstream is needed")
        self.startup_timeout = startup_timeout
        self.ports: list[int] = []
        self._proc: _process.ChildProcess | None = None
        self._dir: Path | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<FaultProxy {self.endpoints or self.upstreams} {state}>"

    @property
    def endpoints(self) -> list[str]:
        """``127.0.0.1:PORT`` to connect to instead of each upstream, in order."""
        return [f"{HOST}:{port}" for port in self.ports]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the proxy process and wait until it listens."""
        if self._proc is not None:
            raise RuntimeError(f"{self!r} was already started")
        proc = self._proc = self._spawn()
        _process.supervise(self)
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(self.startup_timeout):
                line = await asyncio.to_thread(proc.stdout.readline)
            self.ports = [int(p) for p in json.loads(line)["ports"]]
        except BaseException as exc:
            self._kill()
            tail = self.log_tail()
            self._cleanup()
            if isinstance(exc, Exception):
                raise ProxyError(f"the fault proxy did not start: {exc!r}\n{tail}") from exc
            raise

    def _spawn(self) -> _process.ChildProcess:
        self._dir = Path(tempfile.mkdtemp(prefix="aetcd-proxy-"))
        # Run as a script, isolated: it needs the standard library only, so it
        # starts fast and imports nothing from the client under test.
        control = str(self._dir / "control.sock")
        return _process.ChildProcess(
            [sys.executable, "-I", SCRIPT, "--control", control, *self.upstreams],
            log_path=self._dir / "proxy.log",
            pipes=True,
        )

    async def aclose(self) -> None:
        """Stop the proxy process and remove its files; idempotent."""
        proc = self._proc
        if proc is not None and proc.running:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()  # it exits on EOF
            for _ in range(100):  # up to 2 s
                if not proc.running:
                    break
                await asyncio.sleep(0.02)
        self._kill()
        self._cleanup()

    def _kill(self) -> bool:
        """SIGKILL and reap the process; True if it was running."""
        alive = self._proc is not None and self._proc.kill(5.0)
        _process.unsupervise(self)
        return alive

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def log_tail(self, lines: int = 20) -> str:
        """The proxy process's last log lines (its stderr)."""
        if self._dir is None or self._proc is None:
            return ""
        return self._proc.log_tail(lines)

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

    def _emergency_cleanup(self) -> bool:
        """Kill a still-running process and remove the files; True if it ran."""
        alive = self._kill()
        self._cleanup()
        return alive

    def __del__(self) -> None:
        _process.collected(self, "FaultProxy")

    # -- verbs -----------------------------------------------------------------------

    async def _command(self, op: str, index: int | None, **args: Any) -> dict[str, Any]:
        if not self.running or self._dir is None:
            raise ProxyError(f"{self!r} is not running\n{self.log_tail()}")
        if index is not None and not 0 <= index < len(self.ports):
            raise IndexError(f"no upstream {index}: the proxy has {len(self.ports)}")
        request = {"op": op, "targets": None if index is None else [index], **args}
        async with asyncio.timeout(10.0):
            reader, writer = await asyncio.open_unix_connection(str(self._dir / "control.sock"))
            try:
                writer.write(json.dumps(request).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        if not line:
            raise ProxyError(f"the fault proxy did not answer {op!r}\n{self.log_tail()}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise ProxyError(f"the fault proxy refused {op!r}: {reply.get('error')}")
        return reply

    async def passthrough(self, index: int | None = None) -> None:
        """Forward normally again (ends delay and blackhole, listens again after refuse)."""
        await self._command("pass", index)

    async def blackhole(self, index: int | None = None) -> None:
        """Read and discard everything both ways; connections stay open (a silent peer)."""
        await self._command("blackhole", index)

    async def delay(self, index: int | None = None, base: float = 0.2, jitter: float = 0.0) -> None:
        """Forward every chunk ``base +- jitter`` seconds late, keeping the byte order."""
        await self._command("delay", index, base=base, jitter=jitter)

    async def reset(self, index: int | None = None) -> int:
        """RST every current connection (new ones are accepted); returns how many."""
        reply = await self._command("reset", index)
        return int(reply["reset"])

    async def refuse(self, index: int | None = None) -> None:
        """Stop listening: new connections are refused, open ones go on."""
        await self._command("refuse", index)

    async def stats(self) -> list[dict[str, Any]]:
        """Per member: mode, open and accepted connections, resets, bytes each way."""
        reply = await self._command("stats", None)
        members: list[dict[str, Any]] = reply["members"]
        return members
