"""Helpers of the command-line tests: in-process runs and child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aetcd.cli import main


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child `aetcd` process (no inherited ETCDCTL_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


Run = Callable[..., Result]
Spawn = Callable[..., Any]


async def cli_async(capsys: pytest.CaptureFixture[bytes], endpoint: str, *args: str) -> Result:
    """Run ``aetcd ARGS`` in this process from an async test (on a worker thread)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, [f"--endpoints={endpoint}", *args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err.decode())


def run_cli(
    endpoint: str | None, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run ``python -m aetcd ARGS`` as a child process and wait for it."""
    argv = [sys.executable, "-m", "aetcd"]
    if endpoint:
        argv.append(f"--endpoints={endpoint}")
    proc = subprocess.run(
        [*argv, *args],
        input=input,
        capture_output=True,
        env=env if env is not None else child_env(),
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr.decode())


def aetcd_argv(endpoint: str, *args: str) -> list[str]:
    """argv of ``python -m aetcd --endpoints=ENDPOINT ARGS``."""
    return [sys.executable, "-m", "aetcd", f"--endpoints={endpoint}", *args]


class Child:
    """A running child process whose stdout we read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, timeout: float = 15.0) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            raw = await self.proc.stdout.readline()
        if not raw:
            raise EOFError(f"child ended (status {self.proc.returncode}): {await self.stderr()}")
        return raw.decode().rstrip("\n")

    async def lines(self, n: int, timeout: float = 15.0) -> list[str]:
        return [await self.line(timeout) for _ in range(n)]

    async def silent_for(self, seconds: float) -> bool:
        """True if the child printed nothing (and kept running) for *seconds*."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(seconds):
                await self.proc.stdout.readline()
        except TimeoutError:
            return True
        return False

    async def stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                return (await self.proc.stderr.read()).decode(errors="replace")
        return ""

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, sig)

    async def wait(self, timeout: float = 15.0) -> int:
        async with asyncio.timeout(timeout):
            return await self.proc.wait()


@dataclass(frozen=True)
class PKI:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
