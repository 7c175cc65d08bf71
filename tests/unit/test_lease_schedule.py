"""The keep-alive schedule and reply bookkeeping, without a server.

The integration tests (tests/integration/test_lease.py) show the same against
etcd; these pin the arithmetic the safety argument rests on.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from aetcd._lessor import _next_tick

NOW = st.floats(min_value=0.0, max_value=1e7, allow_nan=False)
PERIOD = st.sampled_from([1 / 3, 2 / 3, 1.0, 10 / 3, 20.0, 3600.0, 3e9]) | st.floats(0.01, 1e6)


@given(NOW, PERIOD)
def test_next_tick_is_never_later_than_a_period(now: float, period: float) -> None:
    tick = _next_tick(now, period)
    assert now < tick <= now + period


@given(st.integers(1, 10**6), st.floats(0.01, 0.99), st.floats(0.01, 0.99), PERIOD)
def test_leases_of_one_period_share_ticks(k: int, a: float, b: float, period: float) -> None:
    # Replies anywhere in the same grid interval get the very same float: one wake-up.
    first, second = (k - a) * period, (k - b) * period
    assert _next_tick(first, period) == _next_tick(second, period) == k * period


@given(NOW, PERIOD)
def test_steady_state_renews_once_per_period(now: float, period: float) -> None:
    tick = _next_tick(now, period)
    # The reply to a keep-alive sent at a tick arrives a little after it.
    reply = tick + period * 1e-3
    following = _next_tick(reply, period)
    assert following <= reply + period
    assert math.isclose(following - tick, period, rel_tol=1e-6) or following == reply + period
