"""Helpers for recipe tests: child processes (Python or etcdctl) that read lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from types import TracebackType
from typing import Any

import pytest

from aetcd.testing import find_etcdctl_binary

BLOCKED = 0.3  # how long we watch something that must stay blocked


async def blocked(aw: Awaitable[object]) -> asyncio.Task[object]:
    """Start *aw* and check that it does not finish within BLOCKED seconds."""

    async def run() -> object:
        return await aw

    task = asyncio.create_task(run())
    done, _ = await asyncio.wait({task}, timeout=BLOCKED)
    assert not done, "should have been blocked"
    return task


class Child:
    """A subprocess whose stdout we read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def line(self, timeout: float = 15.0) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            raw = await self.proc.stdout.readline()
        if not raw:
            err = b""
            if self.proc.stderr is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        err = await self.proc.stderr.read()
            raise EOFError(f"child ended: {err.decode(errors='replace')[-2000:]}")
        text = raw.decode().rstrip("\n")
        self.lines.append(text)
        return text

    async def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, sig)

    async def wait(self, timeout: float = 15.0) -> int:
        async with asyncio.timeout(timeout):
            return await self.proc.wait()


@pytest.fixture
async def spawn() -> AsyncIterator[object]:
    children: list[Child] = []

    async def start(argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        child = Child(proc)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGCONT)
                child.proc.kill()
            await child.proc.wait()
        if child.proc.stdin is not None:
            child.proc.stdin.close()


def python_child(code: str, *args: str) -> list[str]:
    """argv running *code* in a fresh interpreter, with *args* in sys.argv[1:]."""
    return [sys.executable, "-c", code, *args]


def etcdctl(endpoint: str, *args: str) -> list[str]:
    return [find_etcdctl_binary(), f"--endpoints={endpoint}", *args]


class Proxy:
    """A loopback TCP proxy that can cut its connections and refuse new ones.

    Lets a test hold one client's watch behind (its connection is gone) while
    another client writes and compacts directly.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.blocked = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        self.block()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def block(self) -> None:
        """Cut every connection now, and refuse new ones until :meth:`unblock`."""
        self.blocked = True
        for writer in list(self._writers):
            writer.transport.abort()

    def unblock(self) -> None:
        self.blocked = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.blocked:
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.add(up_writer)
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                up_writer.transport.abort()
                self._writers.discard(up_writer)
        except OSError:
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
