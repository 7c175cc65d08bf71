"""Child processes (etcd members, the fault proxy) that never outlive their owner or Python.

Children are plain :class:`subprocess.Popen` processes whose exit is polled without
blocking, rather than :func:`asyncio.create_subprocess_exec` children. That keeps an
owner independent of any event loop: a process started in one loop can be stopped
from another one, or synchronously (:func:`run_sync`), which is what a session-wide
pytest fixture needs when every test runs in its own loop. (``asyncio`` would spawn
with ``Popen`` anyway, but would tie reaping to the loop that spawned the child.)

The safety net: an owner registered with :func:`supervise` is cleaned up at
interpreter exit, and its ``__del__`` calls :func:`collected`, which kills a child
still running and says so with a :class:`ResourceWarning`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import warnings
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Protocol, TypeVar

_T = TypeVar("_T")
_POLL_INTERVAL = 0.05
_LOG_TAIL_BYTES = 4096


class Supervised(Protocol):
    """An owner of child processes and temporary files."""

    def _emergency_cleanup(self) -> bool:
        """SIGKILL and reap running children, drop files; True if a child was running."""
        ...


_live: weakref.WeakSet[Supervised] = weakref.WeakSet()


def supervise(owner: Supervised) -> None:
    """Clean ``owner`` up at interpreter exit unless it is collected first."""
    _live.add(owner)


def unsupervise(owner: Supervised) -> None:
    """Stop watching ``owner`` (its children exited)."""
    _live.discard(owner)


@atexit.register
def _kill_leftovers() -> None:
    """Kill children still running at interpreter exit so none outlives Python."""
    for owner in list(_live):
        owner._emergency_cleanup()


def collected(owner: Supervised, label: str) -> None:
    """For an owner's ``__del__``: clean up, and warn if a child was still running."""
    try:
        if owner._emergency_cleanup():
            warnings.warn(
                f"{label} was garbage-collected while running; killed it",
                ResourceWarning,
                stacklevel=2,
            )
    except AttributeError:  # the owner's __init__ failed before all attributes existed
        pass


class ChildProcess:
    """One child in its own session (a Ctrl-C in the terminal is not sent to it).

    Its output goes to ``log_path`` (appended, after a line naming the command), or,
    with ``pipes``, its stdout and stdin are pipes to this process and only stderr is
    logged. :meth:`log_tail` reads what it logged since this start.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        pipes: bool = False,
    ) -> None:
        with log_path.open("ab") as log:
            self.log_path = log_path
            self.log_offset = log.tell()
            log.write(f"=== aetcd.testing: {' '.join(argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log if pipes else subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._popen.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._popen.stdout

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` if the child still runs."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def reap(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the child without raising; True once it is reaped."""
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    async def wait(self, timeout: float) -> bool:
        """Poll until the child exited (and is reaped) or ``timeout`` passed, without blocking."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.005
        while self._popen.poll() is None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_INTERVAL)
        return True

    def kill(self, timeout: float) -> bool:
        """SIGKILL, reap for up to ``timeout`` and close the pipes; True if it was running."""
        alive = self._popen.poll() is None
        if alive:
            with contextlib.suppress(OSError):
                self._popen.kill()
            self.reap(timeout)
        if self._popen.poll() is not None:
            for pipe in (self._popen.stdin, self._popen.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        return alive

    def log_tail(self, lines: int) -> str:
        """The last ``lines`` lines the child logged (see :func:`log_tail`)."""
        return log_tail(self.log_path, self.log_offset, lines)


def log_tail(path: Path, offset: int, lines: int) -> str:
    """The last ``lines`` lines of ``path`` after byte ``offset``, from its last 4 KiB."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(offset, size - _LOG_TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion on a private loop in a helper thread.

    A thread keeps this usable from sync code that runs inside a running loop and never
    touches the caller's event-loop state.
    """

    async def runner() -> _T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aetcd-sync") as pool:
        return pool.submit(asyncio.run, runner()).result()
