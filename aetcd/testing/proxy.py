"""A fault-injecting TCP proxy between a client and etcd members, in its own process.

``async with FaultProxy(cluster.endpoints) as proxy:`` starts this file as a
script in a new Python process (standard library only) with one listening port
on ``127.0.0.1`` per upstream member; point the client at ``proxy.endpoints``
and inject faults per member (an index) or on all of them (no index)::

    await proxy.blackhole(0)          # read and discard both ways; sockets stay open
    await proxy.delay(1, 0.2, 0.1)    # forward each chunk 200 ms +- 100 ms late, in order
    await proxy.reset()               # RST every current connection (SO_LINGER 0)
    await proxy.refuse(2)             # close the listener: new connections are refused
    await proxy.passthrough()         # back to normal (and listening again)
    await proxy.stats()               # per member: mode, open/accepted connections, bytes

The verbs mirror etcd's ``pkg/proxy`` (reliability notes §6.2 H2). A separate
process keeps the proxy running when the test's own process is paused, and
keeps its CPU use out of the client's event loop. It is controlled over a Unix
socket (one JSON line per command and per reply) and exits when its standard
input closes, so it dies with the process that started it even after a crash.

Bounded and loopback-only: it listens on ``127.0.0.1`` only, refuses upstreams
that are not loopback addresses, holds at most 512 connections per member and
4 MiB of delayed data per direction (reading pauses beyond that), and delays
at most 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

__all__ = ["FaultProxy", "ProxyError"]

HOST: Final = "127.0.0.1"
MAX_LINKS: Final = 512
MAX_QUEUED: Final = 4 * 1024 * 1024
MAX_DELAY: Final = 60.0
_CHUNK: Final = 65536
_SCRIPT: Final = str(Path(__file__).resolve())


class ProxyError(RuntimeError):
    """The proxy process failed to start, died, or refused a command."""


def _loopback(address: str) -> tuple[str, int]:
    """``host:port`` of an upstream, checked to be on this machine's loopback."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit():
        raise ValueError(f"upstream {address!r} must be host:port")
    if host != "localhost":
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"upstream {address!r}: host must be an IP address") from None
        if not ip.is_loopback:
            raise ValueError(f"upstream {address!r} is not a loopback address")
    return host, int(port)


# --------------------------------------------------------------------------- child side


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, member: _Member, client: asyncio.StreamWriter) -> None:
        self.member = member
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None

    def reset(self) -> None:
        _rst(self.client)
        if self.upstream is not None:
            _rst(self.upstream)

    async def run(self, client_reader: asyncio.StreamReader) -> None:
        host, port = self.member.upstream
        try:
            async with asyncio.timeout(5.0):
                up_reader, self.upstream = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            _rst(self.client)  # the member is down: the client sees a reset
            return
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._direction(client_reader, self.upstream, "up"))
                tg.create_task(self._direction(up_reader, self.client, "down"))
        except* (OSError, ConnectionError):
            pass
        finally:
            self.client.transport.abort()
            self.upstream.transport.abort()

    async def _direction(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str
    ) -> None:
        """Forward one direction: a reader and a writer joined by a bounded, timed queue."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        room = asyncio.Event()
        room.set()
        queued = 0
        member = self.member

        async def write() -> None:
            nonlocal queued
            loop = asyncio.get_running_loop()
            while True:
                release, data = await queue.get()
                wait = release - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                queued -= len(data)
                if queued <= MAX_QUEUED:
                    room.set()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if member.mode == "blackhole":
                    continue  # swallowed on its way out too
                writer.write(data)
                await writer.drain()
                member.count(name, len(data))

        async with asyncio.TaskGroup() as tg:
            tg.create_task(write())
            loop = asyncio.get_running_loop()
            last = 0.0
            while True:
                await room.wait()
                data = await reader.read(_CHUNK)
                if data and member.mode == "blackhole":
                    continue  # read and discard: the sender sees its bytes acknowledged
                release = loop.time()
                if member.mode == "delay" and data:
                    release += max(0.0, member.base + random.uniform(-1, 1) * member.jitter)
                last = max(last, release)  # never reorder
                queued += len(data)
                if queued > MAX_QUEUED:
                    room.clear()
                queue.put_nowait((last, data))
                if not data:
                    return


class _Member:
    """The listening port for one upstream member and its current fault."""

    def __init__(self, index: int, upstream: tuple[str, int]) -> None:
        self.index = index
        self.upstream = upstream
        self.port = 0
        self.mode = "pass"
        self.base = 0.0
        self.jitter = 0.0
        self.refused = False
        self.server: asyncio.Server | None = None
        self.links: dict[_Link, asyncio.Task[None]] = {}
        self.accepted = 0
        self.resets = 0
        self.bytes = {"up": 0, "down": 0}

    def count(self, direction: str, n: int) -> None:
        self.bytes[direction] += n

    async def listen(self) -> None:
        for attempt in range(50):
            try:
                self.server = await asyncio.start_server(
                    self._accept, HOST, self.port, reuse_address=True, backlog=128
                )
                break
            except OSError:
                if attempt == 49 or self.port == 0:
                    raise
                await asyncio.sleep(0.05)  # the port may linger briefly after refuse()
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        self.refused = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refused or len(self.links) >= MAX_LINKS:
            _rst(writer)
            return
        self.accepted += 1
        link = _Link(self, writer)
        task = asyncio.current_task()
        assert task is not None
        self.links[link] = task
        try:
            await link.run(reader)
        except asyncio.CancelledError:
            pass  # reset() cancels its links; the handler ends quietly
        finally:
            self.links.pop(link, None)

    async def refuse(self) -> None:
        self.refused = True
        server, self.server = self.server, None
        if server is not None:
            server.close()  # stops listening; connections already open go on

    async def reset(self) -> int:
        links = list(self.links.items())
        for link, task in links:
            link.reset()
            task.cancel()
        self.resets += len(links)
        return len(links)

    def stats(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "port": self.port,
            "upstream": f"{self.upstream[0]}:{self.upstream[1]}",
            "mode": self.mode,
            "base": self.base,
            "jitter": self.jitter,
            "refused": self.refused,
            "open": len(self.links),
            "accepted": self.accepted,
            "resets": self.resets,
            "bytes_up": self.bytes["up"],
            "bytes_down": self.bytes["down"],
        }


async def _serve(upstreams: list[tuple[str, int]], control: str) -> None:
    members = [_Member(i, up) for i, up in enumerate(upstreams)]
    for member in members:
        await member.listen()
    done = asyncio.Event()

    async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            request = json.loads(line)
            reply = await _apply(members, request)
        except Exception as exc:  # report it to the caller, keep serving
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    control_server = await asyncio.start_unix_server(command, control)
    loop = asyncio.get_running_loop()
    # The parent holds our stdin: when it exits, however it exits, we do too.
    stdin_reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stdin_reader), os.fdopen(0, "rb", buffering=0)
    )

    async def watch_parent() -> None:
        while await stdin_reader.read(1024):
            pass
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    print(json.dumps({"ports": [m.port for m in members]}), flush=True)
    watcher = asyncio.create_task(watch_parent())
    try:
        await done.wait()
    finally:
        watcher.cancel()
        control_server.close()
        for member in members:
            await member.refuse()
            await member.reset()


async def _apply(members: list[_Member], request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    targets = request.get("targets")
    chosen = members if targets is None else [members[int(i)] for i in targets]
    if op == "stats":
        return {"ok": True, "members": [m.stats() for m in members]}
    if op == "pass":
        for m in chosen:
            m.mode, m.base, m.jitter = "pass", 0.0, 0.0
            if m.refused:
                await m.listen()
    elif op == "blackhole":
        for m in chosen:
            m.mode = "blackhole"
    elif op == "delay":
        base, jitter = float(request["base"]), float(request.get("jitter", 0.0))
        if not (0 <= base <= MAX_DELAY and 0 <= jitter <= MAX_DELAY):
            raise ValueError(f"delay must be within 0..{MAX_DELAY} s")
        for m in chosen:
            m.mode, m.base, m.jitter = "delay", base, jitter
    elif op == "reset":
        return {"ok": True, "reset": sum([await m.reset() for m in chosen])}
    elif op == "refuse":
        for m in chosen:
            await m.refuse()
    else:
        raise ValueError(f"unknown op {op!r}")
    return {"ok": True}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the proxy process (``python -m aetcd.testing.proxy``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--control", required=True, help="Unix socket path for commands")
    parser.add_argument("upstreams", nargs="+", help="loopback host:port of each member")
    args = parser.parse_args(argv)
    upstreams = [_loopback(u) for u in args.upstreams]
    asyncio.run(_serve(upstreams, args.control))


# --------------------------------------------------------------------------- parent side

_live: weakref.WeakSet[FaultProxy] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for proxy in list(_live):
        proxy._kill()


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
        self.upstreams = [f"{h}:{p}" for h, p in (_loopback(u) for u in upstreams)]
        if not self.upstreams:
            raise ValueError("at least one upstream is needed")
        self.startup_timeout = startup_timeout
        self.ports: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None
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
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the proxy process and wait until it listens."""
        if self._proc is not None:
            raise RuntimeError(f"{self!r} was already started")
        self._proc = self._spawn()
        _live.add(self)
        proc = self._proc
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

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._dir = Path(tempfile.mkdtemp(prefix="aetcd-proxy-"))
        with (self._dir / "proxy.log").open("wb") as log:
            # Run as a script, isolated: it needs the standard library only, so it
            # starts fast and imports nothing from the client under test.
            control = str(self._dir / "control.sock")
            return subprocess.Popen(
                [sys.executable, "-I", _SCRIPT, "--control", control, *self.upstreams],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a Ctrl-C in the terminal is not sent to it
            )

    async def aclose(self) -> None:
        """Stop the proxy process and remove its files; idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()  # it exits on EOF
            for _ in range(100):  # up to 2 s
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.02)
        self._kill()
        self._cleanup()

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        _live.discard(self)

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def log_tail(self, lines: int = 20) -> str:
        """The proxy process's last log lines (its stderr)."""
        if self._dir is None:
            return ""
        try:
            text = (self._dir / "proxy.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

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

    def __del__(self) -> None:
        try:
            if self.running:
                self._kill()
                warnings.warn(
                    "FaultProxy was garbage-collected while running; killed it",
                    ResourceWarning,
                    stacklevel=1,
                )
            self._cleanup()
        except AttributeError:  # __init__ failed early
            pass

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


if __name__ == "__main__":
    main()
