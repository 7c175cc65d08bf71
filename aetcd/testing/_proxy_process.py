"""The fault proxy's own process: run as a script by :class:`aetcd.testing.FaultProxy`.

``python -I _proxy_process.py --control SOCKET HOST:PORT...`` listens on one
``127.0.0.1`` port per upstream member, prints ``{"ports": [...]}`` on stdout once
it listens, applies one JSON command per connection to the Unix control socket,
and exits when its standard input closes, so it dies with the process that
started it even after a crash. It uses the standard library only: it starts fast
and imports nothing from the client under test.

Bounded and loopback-only: it listens on ``127.0.0.1`` only, refuses upstreams
that are not loopback addresses, holds at most 512 connections per member and
4 MiB of delayed data per direction (reading pauses beyond that), and delays
at most 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import random
import signal
import socket
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HOST: Final = "127.0.0.1"
MAX_LINKS: Final = 512
MAX_QUEUED: Final = 4 * 1024 * 1024
MAX_DELAY: Final = 60.0
_CHUNK: Final = 65536
SCRIPT: Final = str(Path(__file__).resolve())
"""This file, which the controller runs as a script."""


def loopback(address: str) -> tuple[str, int]:
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
    """Entry point of the proxy process (run as a script)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--control", required=True, help="Unix socket path for commands")
    parser.add_argument("upstreams", nargs="+", help="loopback host:port of each member")
    args = parser.parse_args(argv)
    upstreams = [loopback(u) for u in args.upstreams]
    asyncio.run(_serve(upstreams, args.control))


if __name__ == "__main__":
    main()
