"""Helpers for recipe tests: child processes (Python or etcdctl) that read lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence

import pytest

from aetcd.testing import find_etcdctl_binary


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
