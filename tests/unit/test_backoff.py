"""The one retry pause policy (aetcd._backoff): its arithmetic and its deadline rule."""

from __future__ import annotations

import asyncio

import pytest

from aetcd._backoff import Backoff


def test_pauses_double_up_to_the_cap_and_reset_starts_again() -> None:
    backoff = Backoff(0.025, 0.5)
    assert [backoff.next() for _ in range(7)] == [0.025, 0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.025


def test_without_a_cap_the_pause_is_constant() -> None:
    backoff = Backoff(0.2)
    assert [backoff.next() for _ in range(3)] == [0.2, 0.2, 0.2]


def test_factor() -> None:
    backoff = Backoff(1.0, 10.0, factor=3.0)
    assert [backoff.next() for _ in range(4)] == [1.0, 3.0, 9.0, 10.0]


def test_jitter_stays_within_its_fraction_and_does_not_compound() -> None:
    backoff = Backoff(0.1, 0.1, jitter=0.1)
    pauses = [backoff.next() for _ in range(200)]
    assert all(0.09 <= p <= 0.11 for p in pauses)
    assert len(set(pauses)) > 1  # drawn, not fixed
    doubling = Backoff(0.025, 0.5, jitter=0.1)
    for nominal in (0.025, 0.05, 0.1, 0.2, 0.4, 0.5, 0.5):
        assert nominal * 0.9 <= doubling.next() <= nominal * 1.1


@pytest.mark.parametrize(
    ("first", "cap", "factor", "jitter"),
    [
        (0, None, 2.0, 0.0),
        (-1, None, 2.0, 0.0),
        (1.0, 0.5, 2.0, 0.0),
        (1, 2, 0.5, 0.0),
        (1, 2, 2, 1.0),
    ],
)
def test_bad_settings_are_refused(
    first: float, cap: float | None, factor: float, jitter: float
) -> None:
    with pytest.raises(ValueError):
        Backoff(first, cap, factor=factor, jitter=jitter)


async def test_pause_raises_the_error_at_once_when_the_deadline_would_pass() -> None:
    loop = asyncio.get_running_loop()
    backoff = Backoff(10.0)
    error = RuntimeError("the last attempt's error")
    start = loop.time()
    with pytest.raises(RuntimeError) as caught:
        await backoff.pause(start + 5.0, error)
    assert caught.value is error
    assert loop.time() - start < 5.0  # did not sleep the 10 s pause


async def test_pause_sleeps_within_the_deadline_and_advances() -> None:
    loop = asyncio.get_running_loop()
    backoff = Backoff(0.01, 0.04)
    start = loop.time()
    await backoff.pause(start + 60.0, RuntimeError("unused"))
    await backoff.pause(None, RuntimeError("unused"))
    assert loop.time() - start >= 0.03 - 0.005  # 10 ms then 20 ms
    assert backoff.next() == 0.04
