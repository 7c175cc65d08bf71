"""The clean-up helpers of the recipes: clean-up survives the caller's cancellation."""

from __future__ import annotations

import asyncio

import pytest

from aetcd.recipes._util import idempotent_cleanup


async def test_idempotent_cleanup_runs_once_when_not_cancelled() -> None:
    calls: list[int] = []

    async def work() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        return "done"

    assert await idempotent_cleanup(work, 1.0) == "done"
    assert calls == [1]


async def test_idempotent_cleanup_finishes_again_after_cancellation() -> None:
    started = asyncio.Event()
    finished: list[int] = []
    attempts = 0

    async def work() -> None:
        nonlocal attempts
        attempts += 1
        started.set()
        await asyncio.sleep(0.05)
        finished.append(attempts)

    task = asyncio.create_task(idempotent_cleanup(work, 1.0))
    await started.wait()
    task.cancel()  # interrupts the first attempt
    await asyncio.sleep(0)
    task.cancel()  # and a second cancellation does not stop the shielded retry
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attempts == 2
    assert finished == [2]  # the re-run completed before the cancellation was re-raised


async def test_idempotent_cleanup_retry_is_bounded_by_its_timeout() -> None:
    attempts = 0

    async def work() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(10)

    task = asyncio.create_task(idempotent_cleanup(work, 0.1))
    await asyncio.sleep(0.01)
    task.cancel()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attempts == 2
    assert loop.time() - start < 2.0
