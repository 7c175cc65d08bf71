"""The keep-alive schedule and reply bookkeeping, without a server.

The integration tests (tests/integration/test_lease.py) show the same against
etcd; these pin the arithmetic the safety argument rests on.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from aetcd import lease as lease_module
from aetcd._pb import rpc_pb2
from aetcd.lease import _KeepAlive, _next_tick

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


def keeper_with(inflight: list[int], held: int = 0) -> _KeepAlive:
    keeper = _KeepAlive(None)  # type: ignore[arg-type]  # no transport needed here
    keeper._inflight.extend(inflight)
    keeper._held = held
    keeper._pair_after = -math.inf
    return keeper


def reply(lid: int, ttl: int = 5) -> rpc_pb2.LeaseKeepAliveResponse:
    return rpc_pb2.LeaseKeepAliveResponse(ID=lid, TTL=ttl)


def test_in_order_replies_keep_pairing() -> None:
    keeper = keeper_with([1, 2, 3])
    keeper._answered(reply(1))
    keeper._answered(reply(2))
    assert keeper._pair_after == -math.inf
    assert list(keeper._inflight) == [3] and keeper.received == 2


def test_a_reply_out_of_order_stops_pairing_for_the_stream() -> None:
    # A grpc-proxy answers whenever its own lessor does: never wait on it to write.
    keeper = keeper_with([1, 2, 3])
    keeper._answered(reply(2))
    assert keeper._pair_after == math.inf
    assert list(keeper._inflight) == [2, 3]  # still one reply per request


def test_replies_to_held_requests_mean_they_were_sent() -> None:
    keeper = keeper_with([1, 2, 3], held=3)  # gRPC may ignore the hint and send anyway
    keeper._answered(reply(1))
    assert keeper._held == 2


def test_fast_io_is_available_with_the_installed_grpcio() -> None:
    # Fails when a grpcio upgrade moves the internals _StreamIO relies on: the
    # client still works (public call.write/read), but keep-alives cost ~2x.
    assert lease_module._cygrpc is not None
    assert lease_module._HINT == 1
