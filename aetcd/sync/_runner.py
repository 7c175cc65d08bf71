"""The bridge: a private event-loop thread that runs the async core for blocking callers.

Every blocking call hands a coroutine to the loop with ``call_soon_threadsafe``
and waits on a :class:`concurrent.futures.Future`; calls from many threads
land on the same loop, so they batch like concurrent tasks of one async
client. Nothing of etcd's protocol lives here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..errors import ClientClosedError

__all__ = ["Runner", "bridge"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Bridged")

#: The waiting thread wakes this often, so that an exception raised into it
#: without a real signal (``_thread.interrupt_main()``, or a lock acquire that a
#: signal does not interrupt) is still seen while the call is blocked.
WAIT_SLICE = 0.1

#: How long an interrupted call waits for its cancelled coroutine to clean up
#: (the recipes' shielded cleanups are bounded by the client's timeout anyway).
CANCEL_GRACE = 10.0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any (asyncio's public API only)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Runner:
    """One event loop on one daemon thread, started at construction.

    ``run(coro)`` blocks the calling thread until *coro* finished on the loop
    and returns its result or raises its exception. An interruption of the
    waiting thread (``KeyboardInterrupt``, or any exception raised into it)
    cancels the coroutine's task, waits for its cleanup, and propagates.
    """

    def __init__(self, name: str) -> None:
        self.pid = os.getpid()
        self.closed = False
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._started.wait()

    def _main(self) -> None:
        with asyncio.Runner() as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await self._stop.wait()

    # -- calls -------------------------------------------------------------------

    def check(self, blocking: bool = True) -> asyncio.AbstractEventLoop:
        """The loop, after refusing calls it cannot serve: on a closed client, in a
        forked child, and (when *blocking*) inside a running event loop."""
        loop = self.loop
        if self.pid != os.getpid():
            raise ClientClosedError(
                f"this aetcd.sync client was created in process {self.pid} and cannot be used "
                "in a forked child: its event-loop thread does not exist here; create a new "
                "client after fork()"
            )
        if self.closed or loop is None:
            raise ClientClosedError("the aetcd.sync client is closed")
        if blocking and _running_loop() is not None:
            raise RuntimeError(
                "aetcd.sync blocks the calling thread and cannot be used inside a running "
                "event loop; use the async aetcd.Client there"
            )
        return loop

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run *coro* on the loop and wait for its outcome."""
        try:
            loop = self.check()
        except BaseException:
            coro.close()
            raise
        done: concurrent.futures.Future[R] = concurrent.futures.Future()
        handle: list[asyncio.Task[R]] = []
        loop.call_soon_threadsafe(_start, loop, coro, done, handle)
        try:
            while True:
                try:
                    return done.result(WAIT_SLICE)
                except TimeoutError:
                    if done.done():
                        raise  # the call's own error (DeadlineExceededError is a TimeoutError)
        except BaseException:
            if done.done():
                raise
            # Interrupted while waiting: cancel the task (the loop runs _start
            # before this, so the task exists) and let its cleanup finish.
            loop.call_soon_threadsafe(_cancel, handle)
            with contextlib.suppress(concurrent.futures.CancelledError, TimeoutError):
                done.exception(CANCEL_GRACE)
            raise

    def call(self, fn: Callable[..., R], *args: Any) -> R:
        """Run the plain function ``fn(*args)`` on the loop thread and return its result.

        For reading state the loop owns (no I/O, so allowed inside another running
        loop; on the loop thread itself *fn* is called directly).
        """
        loop = self.check(blocking=False)
        if _running_loop() is loop:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(_call(fn, args), loop).result()

    def submit(self, coro: Coroutine[Any, Any, R]) -> concurrent.futures.Future[R]:
        """Start *coro* on the loop without waiting (for callers that wait themselves)."""
        loop = self.check()
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def stop(self) -> None:
        """Stop the loop (cancelling what is still running) and join its thread."""
        self.closed = True
        loop, stop = self.loop, self._stop
        if self.pid != os.getpid() or loop is None or stop is None:
            return  # a forked child: the thread does not exist in this process
        if threading.current_thread() is self._thread:
            raise RuntimeError("an aetcd.sync client cannot be closed from its own loop thread")
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:
            pass  # the loop is already closed
        self._thread.join()


async def _call(fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    return fn(*args)


def _start(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, R],
    done: concurrent.futures.Future[R],
    handle: list[asyncio.Task[R]],
) -> None:
    task = loop.create_task(coro)
    handle.append(task)
    task.add_done_callback(lambda t: _settle(t, done))


def _settle(task: asyncio.Task[R], done: concurrent.futures.Future[R]) -> None:
    if task.cancelled():
        done.cancel()
        return
    exc = task.exception()
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


def _cancel(handle: list[asyncio.Task[Any]]) -> None:
    if handle:
        handle[0].cancel()


class Bridged:
    """A blocking face of one async object: its ``_aio``, run on ``_runner``."""

    __slots__ = ("_aio", "_runner")

    def __init__(self, runner: Runner, aio: Any) -> None:
        self._runner = runner
        self._aio = aio


def bridge(
    fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Bridged, P], R]:
    """A blocking method running the async method *fn* of ``self._aio`` on the loop.

    The signature (for type checkers and ``help()``) and the docstring are
    *fn*'s; arguments are passed through untouched, so they are checked by
    the async method, before any I/O, exactly as there.
    """

    def method(self: Bridged, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._runner.run(fn(self._aio, *args, **kwargs))

    method.__name__ = fn.__name__
    method.__qualname__ = fn.__qualname__
    method.__doc__ = fn.__doc__
    method.__wrapped__ = fn  # type: ignore[attr-defined]
    return method
