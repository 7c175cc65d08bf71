"""The bridge: a private event-loop thread that runs the async core for blocking callers.

Every blocking call queues a coroutine for the loop and waits on a lock that
the loop releases when the call's task is done. Only the first call of a burst
wakes the loop (``call_soon_threadsafe``), which then starts every queued call:
calls from many threads land on the same loop, so they batch like concurrent
tasks of one async client. Nothing of etcd's protocol lives here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import os
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

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

    The thread holds no reference to its runner: a runner that nothing uses any
    more (its client and every handle dropped without ``close()``) is collected,
    and its finalizer runs the ``closers`` on the loop and ends the thread.
    """

    def __init__(self, name: str) -> None:
        self.pid = os.getpid()
        self.closed = False
        #: Coroutine functions run on the loop before it stops (the async client's close).
        self.closers: list[Callable[[], Awaitable[object]]] = []
        # Calls waiting for the loop, and whether a drain of them is scheduled:
        # a burst of calls from many threads wakes the loop once, not once each.
        self._pending: deque[_Call[Any]] = deque()
        self._draining = False
        started: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        ready = threading.Event()
        self._thread = threading.Thread(
            target=_serve_forever, args=(started, ready, self.closers), name=name, daemon=True
        )
        self._thread.start()
        ready.wait()
        if not started:
            raise RuntimeError("the aetcd.sync event-loop thread failed to start")
        self.loop, stop = started[0]
        # Not at interpreter exit: closing there could wait on the network.
        self._finalizer = weakref.finalize(self, _shut_down, self.loop, stop, self.pid)
        self._finalizer.atexit = False

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
        if self.closed:
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
        call: _Call[R] = _Call(coro)
        self._pending.append(call)
        if not self._draining:
            self._draining = True
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop closed after check(): a racing close()
                pass  # the wait below sees the thread end and abandons the call
        waiter = call.waiter
        try:
            while not waiter.acquire(True, WAIT_SLICE):
                if not self._thread.is_alive():
                    call.abandon()  # the loop ended under the call (a racing close)
        except BaseException:
            if call.finished:
                raise
            # Interrupted while waiting: cancel the task (or, if the loop has not
            # started it yet, keep it from starting) and let its cleanup finish.
            try:
                loop.call_soon_threadsafe(call.cancel)
            except RuntimeError:
                pass  # the loop is closed: nothing is left to clean up
            else:
                waiter.acquire(True, CANCEL_GRACE)
            raise
        return call.outcome(self.closed)

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
        """Run the closers, stop the loop (cancelling what is still running) and
        join its thread."""
        if self.pid != os.getpid():
            self.closed = True
            self._finalizer.detach()
            return  # a forked child: the thread does not exist in this process
        if threading.current_thread() is self._thread:
            raise RuntimeError("an aetcd.sync client cannot be closed from its own loop thread")
        self.closed = True
        self._finalizer()
        self._thread.join()

    def _drain(self) -> None:
        """On the loop: start every queued call (refuse them once closed)."""
        # Cleared before popping: a call queued after this line schedules a drain.
        self._draining = False
        pending, loop = self._pending, self.loop
        while pending:
            call = pending.popleft()
            if self.closed:
                call.abandon()
            else:
                call.start(loop)


def _serve_forever(
    started: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]],
    ready: threading.Event,
    closers: list[Callable[[], Awaitable[object]]],
) -> None:
    """The loop thread: run a loop until its stop event is set, then the closers
    (asyncio.Runner then cancels what is left and closes the loop)."""

    async def serve() -> None:
        stop = asyncio.Event()
        started.append((asyncio.get_running_loop(), stop))
        ready.set()
        await stop.wait()
        for close in closers:
            with contextlib.suppress(Exception):
                await close()

    try:
        with asyncio.Runner() as runner:
            runner.run(serve())
    finally:
        ready.set()  # never leave the constructor waiting


def _shut_down(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, pid: int) -> None:
    """From any thread, once: tell the loop to close and stop (no join: this also
    runs from the garbage collector, which must not block)."""
    if pid != os.getpid():
        return
    with contextlib.suppress(RuntimeError):  # the loop is already closed
        loop.call_soon_threadsafe(stop.set)


async def _call(fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    return fn(*args)


class _Call(Generic[R]):
    """One blocking call in flight: its coroutine, its task once the loop started
    it, its outcome, and the lock its caller waits on (held until the outcome is set).

    A bare lock is the cheapest thing one thread can block on and another
    release: no condition, no callbacks, no result future.
    """

    __slots__ = ("cancelled", "coro", "error", "finished", "task", "value", "waiter")

    def __init__(self, coro: Coroutine[Any, Any, R]) -> None:
        self.coro = coro
        self.task: asyncio.Task[R] | None = None
        self.waiter = threading.Lock()
        self.waiter.acquire()
        self.finished = False
        self.value: R | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: run the coroutine as a task (unless cancelled first)."""
        if self.cancelled:
            self.coro.close()
            self._finish()
            return
        self.task = task = loop.create_task(self.coro)
        task.add_done_callback(self._settle)

    def _settle(self, task: asyncio.Task[R]) -> None:
        if task.cancelled():
            self.cancelled = True
        else:
            self.error = task.exception()
            if self.error is None:
                self.value = task.result()
        self._finish()

    def _finish(self) -> None:
        self.finished = True
        self.waiter.release()

    def cancel(self) -> None:
        """On the loop: cancel the task, or keep it from starting."""
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def abandon(self) -> None:
        """The call will never run: its loop thread is gone (seen by the caller) or
        the client was closed before the call started (seen by the drain)."""
        if not self.finished:
            self.cancelled = True
            if self.task is None:
                self.coro.close()  # never started: no "never awaited" warning
            self._finish()

    def outcome(self, closed: bool) -> R:
        """In the caller, once finished: the result, or raise the error."""
        error = self.error
        if error is not None:
            self.error = None
            try:
                raise error
            finally:
                del error  # no cycle through this frame's traceback
        if self.cancelled:
            if closed:
                raise ClientClosedError("the aetcd.sync client was closed during the call")
            raise concurrent.futures.CancelledError()
        return cast(R, self.value)


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

    The parameters (for type checkers, ``help()`` and ``inspect.signature()``)
    and the docstring are *fn*'s, the return type what awaiting it gives;
    arguments are passed through untouched, so they are checked by the async
    method, before any I/O, exactly as there.
    """

    def method(self: Bridged, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._runner.run(fn(self._aio, *args, **kwargs))

    method.__name__ = fn.__name__
    method.__qualname__ = fn.__qualname__
    method.__doc__ = fn.__doc__
    method.__wrapped__ = fn  # type: ignore[attr-defined]
    method.__signature__ = _blocking_signature(fn)  # type: ignore[attr-defined]
    return method


def _blocking_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """*fn*'s signature returning what a blocking caller gets: the ``X`` of an
    explicit delegator's ``Coroutine[Any, Any, X]`` (an ``async def`` already
    names ``X``). Annotations are strings here (``from __future__ import annotations``)."""
    sig = inspect.signature(fn)
    returns = sig.return_annotation
    prefix = "Coroutine[Any, Any, "
    if isinstance(returns, str) and returns.startswith(prefix) and returns.endswith("]"):
        sig = sig.replace(return_annotation=returns[len(prefix) : -1])
    return sig
