"""Small helpers shared by the recipes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..errors import InvalidArgumentError

T = TypeVar("T")

log = logging.getLogger("aetcd")


async def shielded(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    """Run *coro* to completion even if the calling task is cancelled meanwhile.

    Used for clean-up (deleting a waiter key, revoking a lease) that must happen
    when a block is left by cancellation. The work is bounded by *timeout*; a
    cancellation of the caller is re-raised once the work is done.
    """
    task = asyncio.ensure_future(_bounded(coro, timeout))
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.warning("clean-up after cancellation failed: %r", task.exception())
        raise asyncio.CancelledError
    return task.result()


async def idempotent_cleanup(
    make: Callable[[], Coroutine[Any, Any, T]], timeout: float | None
) -> T:
    """Run the clean-up ``make()`` directly; if the caller is cancelled meanwhile,
    run it again to completion, shielded (see :func:`shielded`), then re-raise.

    For idempotent clean-up only (a delete guarded by a create-revision
    compare, a revoke): the interrupted attempt may or may not have been
    applied, and doing it twice is harmless. The common, uncancelled case then
    costs no extra task and no extra event-loop turns (measured on lock cycles).
    """
    try:
        return await make()
    except asyncio.CancelledError:
        try:
            await shielded(make(), timeout)
        except Exception as exc:  # the caller's cancellation is what it must see
            log.warning("clean-up after cancellation failed: %r", exc)
        raise


async def _bounded(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    async with asyncio.timeout(timeout):
        return await coro


async def first_of(main: Awaitable[T], lost: Awaitable[None]) -> tuple[bool, T | None]:
    """Await *main* unless *lost* finishes first; returns (main_finished, result).

    Both are run as tasks owned by this call and cancelled before it returns.
    """
    main_task = asyncio.ensure_future(main)
    lost_task = asyncio.ensure_future(lost)
    try:
        await asyncio.wait({main_task, lost_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (main_task, lost_task):
            if not task.done():
                task.cancel()
        for task in (main_task, lost_task):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if main_task.done() and not main_task.cancelled():
        return True, main_task.result()
    return False, None


def wait_timeout(value: object, name: str = "timeout") -> float | None:
    """Check a recipe's wait bound: ``None`` or ``math.inf`` (wait for ever), or
    seconds >= 0.

    Unlike a call's deadline, 0 is valid: it bounds only the waiting, so a
    free lock is still taken and a ready barrier passed.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 seconds, got {value!r}", code=None)
    return None if math.isinf(value) else float(value)
