"""Leases against a real etcd: grant/revoke/inspect, bad inputs, and keep-alive.

Expiry bounds follow reliability.md §1.5: a lease expires within TTL + 2 s when
no leader changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import aetcd
from aetcd import _lessor as lessor_module
from aetcd.testing import find_etcd_binary
from aetcd.testing.pytest_plugin import EtcdServerFactory


def keeper(client: aetcd.Client) -> Any:
    ka = client._leases._keepalive
    assert ka is not None
    return ka


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, step: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        await asyncio.sleep(step)


# -- unary round trips ------------------------------------------------------------


async def test_grant_time_to_live_leases_revoke(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    lease = await etcd_client.grant(30)
    assert isinstance(lease, aetcd.Lease)
    assert lease.id > 0 and lease.ttl == 30
    assert lease.alive and 28 < lease.remaining <= 30 and lease.lost_reason is None
    assert f"{lease.id:#x}" in repr(lease)
    assert lease.id in await etcd_client.leases()

    await etcd_client.put(etcd_prefix + "b", "2", lease=lease)
    await etcd_client.put(etcd_prefix + "a", "1", lease=lease.id)
    assert (await etcd_client.get(etcd_prefix + "a")).kvs[0].lease == lease.id

    info = await etcd_client.time_to_live(lease)
    assert isinstance(info, aetcd.LeaseInfo)
    assert info.id == lease.id and info.granted_ttl == 30 and 0 < info.ttl <= 30
    assert info.keys == [] and info.header.revision > 0
    with_keys = await lease.time_to_live(keys=True)
    assert sorted(with_keys.keys) == [(etcd_prefix + k).encode() for k in "ab"]
    with pytest.raises(AttributeError):
        info.ttl = 3  # type: ignore[misc]

    await etcd_client.revoke(lease)
    assert not lease.alive and lease.remaining == 0.0
    assert isinstance(lease.lost_reason, aetcd.LeaseLostError)
    assert "revoked" in str(lease.lost_reason)
    await lease.lost()  # returns at once
    assert (await etcd_client.get(etcd_prefix, prefix=True)).kvs == []
    assert lease.id not in await etcd_client.leases()
    with pytest.raises(aetcd.LeaseNotFoundError):  # B14: etcd answers TTL -1, no error
        await etcd_client.time_to_live(lease)
    with pytest.raises(aetcd.LeaseNotFoundError):  # B16
        await etcd_client.revoke(lease)


async def test_time_to_live_keys_are_relative_to_the_namespace(
    etcd_server: Any, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    lease = await etcd_client.grant(30)
    await etcd_client.put(etcd_prefix + "outside", "v", lease=lease)
    async with aetcd.Client(etcd_server.endpoint, namespace=etcd_prefix + "ns/") as client:
        await client.put("inside", "v", lease=lease)
        assert (await client.time_to_live(lease, keys=True)).keys == [b"inside"]
    assert len((await etcd_client.time_to_live(lease, keys=True)).keys) == 2
    await etcd_client.revoke(lease)


async def test_grant_with_id_and_keepalive_once(etcd_client: aetcd.Client) -> None:
    wanted = 0x7A00_0000_0000 + secrets.randbelow(2**32)
    lease = await etcd_client.grant(10, id=wanted)
    assert lease.id == wanted
    with pytest.raises(aetcd.LeaseExistsError):
        await etcd_client.grant(10, id=wanted)
    await asyncio.sleep(1.1)
    before = lease.remaining
    assert await etcd_client.keepalive_once(lease) == 10
    assert lease.remaining > before
    assert await lease.refresh() == 10
    assert await etcd_client.keepalive_once(wanted) == 10
    await lease.revoke()
    with pytest.raises(aetcd.LeaseNotFoundError):  # B15: etcd answers TTL 0, no error
        await etcd_client.keepalive_once(wanted)
    with pytest.raises(aetcd.LeaseNotFoundError):
        await lease.refresh()


async def test_keys_vanish_when_lease_expires(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    start = time.monotonic()
    lease = await etcd_client.grant(2)
    assert lease.ttl == 2
    await etcd_client.put(etcd_prefix + "k", "v", lease=lease)
    await (
        lease.lost()
    )  # not kept alive: the client's estimate runs out TTL after the grant was sent
    # The estimate starts when the grant request was sent (never later), so it
    # cannot run out before 2 s after `start`; the sweep runs once a second.
    assert 2.0 - 0.05 <= time.monotonic() - start < 2.0 + 1.0 + 1.0
    assert "no successful keep-alive" in str(lease.lost_reason)

    async def key_gone() -> bool:
        return not (await etcd_client.get(etcd_prefix + "k")).kvs

    await eventually(key_gone, within=2.0 + 2.0)
    with pytest.raises(aetcd.LeaseNotFoundError):
        await etcd_client.time_to_live(lease.id)


# -- bad input (reliability.md §7 B11-B16) ------------------------------------------


class Sink:
    """A TCP endpoint counting connections: zero after a call proves no RPC was tried."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, str]]:
    s = Sink()
    server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield s, f"127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


LOCAL_CASES: list[tuple[str, Callable[[aetcd.Client], Awaitable[object]], type[Exception]]] = [
    ("B11 ttl 0", lambda c: c.grant(0), aetcd.InvalidArgumentError),
    ("B11 ttl -5", lambda c: c.grant(-5), aetcd.InvalidArgumentError),
    ("B12 ttl too large", lambda c: c.grant(9_000_000_001), aetcd.LeaseTTLTooLargeError),
    ("B13 negative id", lambda c: c.grant(5, id=-7), aetcd.InvalidArgumentError),
    ("B25 bool ttl", lambda c: c.grant(True), TypeError),
    ("float ttl", lambda c: c.grant(1.5), TypeError),  # type: ignore[arg-type]
    ("str ttl", lambda c: c.grant("5"), TypeError),  # type: ignore[arg-type]
    ("bool id", lambda c: c.grant(5, id=False), TypeError),
    ("bad timeout", lambda c: c.grant(5, timeout=0), aetcd.InvalidArgumentError),
    ("negative lease revoke", lambda c: c.revoke(-1), aetcd.InvalidArgumentError),
    ("bool lease keepalive", lambda c: c.keepalive_once(True), TypeError),
    ("bool lease keepalive block", lambda c: c.keepalive(True), TypeError),  # type: ignore[arg-type]
    ("negative lease keepalive block", lambda c: c.keepalive(-3), aetcd.InvalidArgumentError),
    ("str lease ttl", lambda c: c.time_to_live("1"), TypeError),  # type: ignore[arg-type]
    ("non-bool keys", lambda c: c.time_to_live(1, keys=1), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("name", "call", "error"), LOCAL_CASES, ids=[c[0] for c in LOCAL_CASES])
async def test_bad_input_rejected_before_io(
    sink: tuple[Sink, str],
    name: str,
    call: Callable[[aetcd.Client], Awaitable[object]],
    error: type[Exception],
) -> None:
    counter, endpoint = sink
    async with aetcd.Client(endpoint, timeout=1.0) as client:
        with pytest.raises(error):
            await asyncio.wait_for(call(client), 1.0)
        with pytest.raises((TypeError, aetcd.InvalidArgumentError)):
            client.lease(ttl=0)  # rejected at the call, before `async with`
    await asyncio.sleep(0)
    assert counter.connections == 0, f"{name}: an RPC was attempted"


async def test_unknown_lease_errors_from_server(etcd_client: aetcd.Client) -> None:
    unknown = 0x7FFF_0000_0000 + secrets.randbelow(2**32)
    with pytest.raises(aetcd.LeaseNotFoundError):  # B14
        await etcd_client.time_to_live(unknown)
    with pytest.raises(aetcd.LeaseNotFoundError):  # B15
        await etcd_client.keepalive_once(unknown)
    with pytest.raises(aetcd.LeaseNotFoundError) as revoke:  # B16
        await etcd_client.revoke(unknown)
    assert revoke.value.message == "etcdserver: requested lease not found"
    with pytest.raises(aetcd.LeaseNotFoundError):  # B10
        await etcd_client.put("t/lease-b10", "v", lease=unknown)


# -- keep-alive -------------------------------------------------------------------


async def test_lease_context_keeps_alive_then_revokes(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    async with etcd_client.lease(ttl=2) as lease:
        assert lease.ttl == 2
        await etcd_client.put(etcd_prefix + "k", "v", lease=lease)
        await asyncio.sleep(7)  # 3.5 TTLs
        assert lease.alive and lease.remaining > 0
        assert (await etcd_client.get(etcd_prefix + "k")).kvs
        assert (await etcd_client.time_to_live(lease)).ttl > 0
        assert keeper(etcd_client).received >= 7  # about one reply every TTL/3
    assert not lease.alive
    assert "revoked" in str(lease.lost_reason)
    assert (await etcd_client.get(etcd_prefix + "k")).kvs == []
    with pytest.raises(aetcd.LeaseNotFoundError):
        await etcd_client.time_to_live(lease)


async def test_leases_share_one_stream(etcd_client: aetcd.Client) -> None:
    async with etcd_client.lease(ttl=3) as a, etcd_client.lease(ttl=4) as b:
        ka = keeper(etcd_client)
        assert set(ka.leases) == {a.id, b.id}
        await asyncio.sleep(1.5)
        async with etcd_client.lease(ttl=5) as c:
            await asyncio.sleep(0.3)
            assert c.alive
        assert ka.streams_opened == 1
        # a and b were each renewed by now (first keep-alive within TTL/3 of the grant).
        assert ka.received >= 2 and a.alive and b.alive
        assert c.id not in ka.leases and not c.alive
    assert ka.leases == {}


async def test_revoke_elsewhere_is_noticed_within_a_third_of_the_ttl(
    etcd_server: Any, etcd_client: aetcd.Client
) -> None:
    async with etcd_client.lease(ttl=3) as lease:
        await asyncio.sleep(0.3)  # the first keep-alive has been answered
        async with aetcd.Client(etcd_server.endpoint) as other:
            await other.revoke(lease.id)
        start = time.monotonic()
        async with asyncio.timeout(3 / 3 + 0.7):
            await lease.lost()
        assert time.monotonic() - start < 1.7
        assert not lease.alive
        assert "TTL 0" in str(lease.lost_reason)
    # Leaving the block does not complain that the lease is already gone.


async def test_cancellation_inside_lease_still_revokes(etcd_client: aetcd.Client) -> None:
    entered = asyncio.Event()
    leases: list[aetcd.Lease] = []

    async def hold() -> None:
        async with etcd_client.lease(ttl=30) as lease:
            leases.append(lease)
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aetcd.LeaseNotFoundError):
        await etcd_client.time_to_live(leases[0])

    # A timeout around the block (a cancellation turned into TimeoutError) too.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3), etcd_client.lease(ttl=30) as lease:
            await asyncio.sleep(10)
    with pytest.raises(aetcd.LeaseNotFoundError):
        await etcd_client.time_to_live(lease)


async def test_close_ends_background_task(etcd_server: Any) -> None:
    client = aetcd.Client(etcd_server.endpoint)
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(client.lease(ttl=10))
        b = await stack.enter_async_context(client.lease(ttl=10))
        ka = keeper(client)
        assert ka._task is not None and not ka._task.done()
        await asyncio.sleep(0.2)
        await client.close()
        assert ka._task is None
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert not a.alive and not b.alive
        assert "closed" in str(a.lost_reason)
        await asyncio.wait_for(a.lost(), 0.1)
    # Exiting the blocks after close() is quiet; the leases expire on their own.
    with pytest.raises(aetcd.ClientClosedError):
        async with client.lease(ttl=5):
            pass


async def test_keeper_idles_and_restarts(
    etcd_client: aetcd.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lessor_module, "_IDLE_LINGER", 0.2)

    async def stream_opened(n: int) -> None:
        async def opened() -> bool:
            return bool(ka.streams_opened >= n)

        await eventually(opened, within=5, step=0.02)

    async with etcd_client.lease(ttl=5):
        ka = keeper(etcd_client)
        await stream_opened(1)
    assert ka.streams_opened == 1
    task = ka._task
    assert task is not None
    # No lease left: the stream and its task end after the idle linger (0.2 s),
    # a hang-up round trip and the teardown (allow for a loaded machine).
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "the keep-alive task did not stop when idle"
    assert ka._task is None
    async with etcd_client.lease(ttl=5) as lease:
        assert ka._task is not None and ka._task is not task
        await stream_opened(2)
        assert lease.alive and ka.streams_opened == 2


async def test_unexpected_failure_marks_leases_lost_and_is_logged(
    etcd_client: aetcd.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Any, lid: int, ttl: int) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lessor_module.KeepAlive, "_on_reply", broken)
    with caplog.at_level(logging.ERROR, logger="aetcd"):
        async with etcd_client.lease(ttl=5) as lease:
            async with asyncio.timeout(2):
                await lease.lost()
            reason = lease.lost_reason
            assert isinstance(reason, aetcd.LeaseLostError)
            assert isinstance(reason.__cause__, BaseExceptionGroup)
            assert "boom" in repr(reason.__cause__.exceptions)
    assert "lease keep-alive failed" in caplog.text
    with pytest.raises(aetcd.LeaseNotFoundError):  # still revoked on exit
        await etcd_client.time_to_live(lease)


# -- keep-alive across outages (private servers) --------------------------------------


async def test_keepalive_survives_restart_shorter_than_ttl(
    etcd_server_factory: EtcdServerFactory,
) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client, client.lease(ttl=6) as lease:
        await client.put("held", "v", lease=lease)
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        server.kill()
        await server.restart()
        # Past the deadline the last pre-crash reply gave: only a new reply keeps it alive.
        await asyncio.sleep(max(0.0, killed + 6.5 - time.monotonic()))
        assert lease.alive, lease.lost_reason
        assert keeper(client).streams_opened >= 2
        assert (await client.get("held")).kvs
    async with aetcd.Client(server.endpoint) as client:
        assert (await client.get("held")).kvs == []


async def test_lease_lost_when_server_down_longer_than_ttl(
    etcd_server_factory: EtcdServerFactory,
) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint, timeout=1.0) as client:
        async with client.lease(ttl=3) as lease:
            await asyncio.sleep(0.3)
            server.kill()
            start = time.monotonic()
            async with asyncio.timeout(3 + 1.5):
                await lease.lost()
            assert 1.5 < time.monotonic() - start
            assert not lease.alive
            assert "no successful keep-alive" in str(lease.lost_reason)
        # The revoke on exit failed (server down) but the lease was lost already: no error.


# -- the keep-alive schedule (shared TTL/3 grid, batched writes) ---------------------------


def record_renewals(leases: list[aetcd.Lease]) -> dict[int, list[float]]:
    """Reply times per lease from now on (through the handle's on_renewed hook)."""
    times: dict[int, list[float]] = {}
    for lease in leases:
        seen = times.setdefault(lease.id, [time.monotonic()])
        lease.on_renewed(lambda ttl, seen=seen: seen.append(time.monotonic()))
    return times


def max_gap(times: list[float]) -> float:
    return max(b - a for a, b in itertools.pairwise([*times, time.monotonic()]))


async def test_leases_of_one_ttl_are_renewed_together(etcd_client: aetcd.Client) -> None:
    async with contextlib.AsyncExitStack() as stack:
        leases = await asyncio.gather(
            *(stack.enter_async_context(etcd_client.lease(ttl=3)) for _ in range(40))
        )
        ka = keeper(etcd_client)
        await asyncio.sleep(2.5)  # past the first round: every lease is on the 1 s grid
        times = record_renewals(leases)
        sent = ka.sent
        await asyncio.sleep(3.0)
        assert all(lease.alive for lease in leases)
        # Each lease is renewed at least once per TTL/3 (1 s) after its last reply
        # (generous slack for a loaded machine), and not more often than that:
        # no storm of early renewals.
        assert max(max_gap(t) for t in times.values()) < 1.0 + 0.8
        assert ka.sent - sent <= 40 * (3 + 1)
        # They share their send times: a handful of ticks, all on the grid.
        ticks = {kept.next for kept in ka.leases.values()}
        assert len(ticks) <= 3, sorted(ticks)
        assert all(abs(t - round(t)) < 1e-6 for t in ticks)


async def test_short_ttl_renewed_in_time_next_to_long_ones(etcd_client: aetcd.Client) -> None:
    async with (
        etcd_client.lease(ttl=2) as short,
        etcd_client.lease(ttl=60) as long,
        etcd_client.lease(ttl=3600) as hour,
    ):
        times = record_renewals([short, long, hour])
        await asyncio.sleep(4.5)
        assert short.alive and long.alive and hour.alive
        assert len(times[short.id]) >= 4  # about every 2/3 s
        assert max_gap(times[short.id]) < 2 / 3 + 0.8  # well before its 2 s TTL
        # The long ones are not dragged along: at most their first reply and one
        # early renewal onto their own grid.
        assert len(times[long.id]) <= 3 and len(times[hour.id]) <= 3
        assert (await etcd_client.time_to_live(short)).ttl >= 1


async def test_a_burst_of_leases_shares_one_stream(etcd_client: aetcd.Client) -> None:
    async with contextlib.AsyncExitStack() as stack:
        leases = await asyncio.gather(
            *(stack.enter_async_context(etcd_client.lease(ttl=3)) for _ in range(300))
        )
        ka = keeper(etcd_client)
        await asyncio.sleep(2.5)
        assert all(lease.alive for lease in leases)
        assert ka.streams_opened == 1
        assert ka.received >= 600 and ka.sent >= ka.received


async def test_many_leases_survive_a_restart(etcd_server_factory: EtcdServerFactory) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client, contextlib.AsyncExitStack() as stack:
        leases = await asyncio.gather(
            *(stack.enter_async_context(client.lease(ttl=6)) for _ in range(200))
        )
        await asyncio.sleep(2.5)
        killed = time.monotonic()
        server.kill()
        await server.restart()
        await asyncio.sleep(max(0.0, killed + 6.5 - time.monotonic()))
        assert all(lease.alive for lease in leases)
        assert keeper(client).streams_opened >= 2
        ttls = [(await client.time_to_live(lease)).ttl for lease in leases[:20]]
        assert min(ttls) > 0


@pytest.fixture
async def grpc_proxy(etcd_server: Any, tmp_path: Any) -> AsyncIterator[str]:
    """etcd's own grpc-proxy in front of the session server; yields its endpoint."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = await asyncio.create_subprocess_exec(
        find_etcd_binary(),
        "grpc-proxy",
        "start",
        f"--endpoints={etcd_server.endpoint}",
        f"--listen-addr=127.0.0.1:{port}",
        f"--data-dir={tmp_path / 'proxy'}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"127.0.0.1:{port}"
        async with aetcd.Client(endpoint, timeout=10.0) as client:
            await client.get("t/proxy-ready")  # waits for the proxy to listen
        yield endpoint
    finally:
        proc.terminate()
        await proc.wait()


async def test_leases_survive_a_grpc_proxy(grpc_proxy: str) -> None:
    # The proxy answers keep-alives when its own lessor hears back, in any order.
    async with aetcd.Client(grpc_proxy) as client, contextlib.AsyncExitStack() as stack:
        leases = await asyncio.gather(
            *(stack.enter_async_context(client.lease(ttl=3)) for _ in range(100))
        )
        times = record_renewals(leases)
        await asyncio.sleep(6)
        assert all(lease.alive for lease in leases)
        # Through the proxy, replies come on the proxy's own lessor schedule (it
        # renews at TTL/3 on its own timer), so gaps up to about 2 s are normal
        # and a loaded machine adds more. The promise is that no lease lapses:
        # every one alive and no reply gap reaching the TTL.
        assert max(max_gap(t) for t in times.values()) < 3


# -- keeping alive a lease granted elsewhere -------------------------------------------


async def test_keepalive_by_id_renews_and_does_not_revoke(
    etcd_server: Any, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    async with aetcd.Client(etcd_server.endpoint) as other:
        granted = await other.grant(2)
        await other.put(etcd_prefix + "k", "v", lease=granted)
    async with etcd_client.keepalive(granted.id) as lease:
        assert isinstance(lease, aetcd.Lease) and lease is not granted
        assert lease.id == granted.id and lease.ttl == 2 and lease.alive
        assert lease.id in keeper(etcd_client).leases
        await asyncio.sleep(4)  # two TTLs
        assert lease.alive and (await etcd_client.get(etcd_prefix + "k")).kvs
    assert lease.id not in keeper(etcd_client).leases
    # Not revoked: still there, with the rest of its last TTL, until it expires.
    assert (await etcd_client.time_to_live(lease)).ttl >= 0
    assert lease.alive
    async with asyncio.timeout(2 + 1.5):
        await lease.lost()
    assert "no successful keep-alive" in str(lease.lost_reason)


async def test_keepalive_of_a_granted_handle_and_sharing(etcd_client: aetcd.Client) -> None:
    granted = await etcd_client.grant(2)
    async with etcd_client.keepalive(granted) as lease:
        assert lease is granted
        async with etcd_client.keepalive(granted.id) as again:
            assert again is granted  # one handle per lease and client
        await asyncio.sleep(3)
        assert granted.alive and granted.id in keeper(etcd_client).leases  # still renewed
    assert granted.id not in keeper(etcd_client).leases
    await etcd_client.revoke(granted)

    async with etcd_client.lease(ttl=2) as owned:
        async with etcd_client.keepalive(owned.id) as shared:
            assert shared is owned
        await asyncio.sleep(2.5)
        assert owned.alive  # leaving the inner block did not stop its keep-alives
    assert not owned.alive and "revoked" in str(owned.lost_reason)


async def test_keepalive_of_an_unknown_lease(etcd_client: aetcd.Client) -> None:
    unknown = 0x7FFE_0000_0000 + secrets.randbelow(2**32)
    with pytest.raises(aetcd.LeaseNotFoundError):
        async with etcd_client.keepalive(unknown):
            pytest.fail("entered")
    revoked = await etcd_client.grant(5)
    await etcd_client.revoke(revoked)
    with pytest.raises(aetcd.LeaseNotFoundError):
        async with etcd_client.keepalive(revoked):
            pytest.fail("entered")
    keeper_now = etcd_client._leases._keepalive
    assert keeper_now is None or unknown not in keeper_now.leases


async def test_keepalive_notices_a_revoke_elsewhere(
    etcd_server: Any, etcd_client: aetcd.Client
) -> None:
    granted = await etcd_client.grant(3)
    async with etcd_client.keepalive(granted.id) as lease:
        async with aetcd.Client(etcd_server.endpoint) as other:
            await other.revoke(granted.id)
        async with asyncio.timeout(3 / 3 + 0.7):
            await lease.lost()
        assert "TTL 0" in str(lease.lost_reason)
        assert isinstance(lease.lost_reason.__cause__, aetcd.LeaseNotFoundError)


async def test_on_renewed_reports_each_renewal(etcd_client: aetcd.Client) -> None:
    renewals: asyncio.Queue[int] = asyncio.Queue()
    async with etcd_client.lease(2) as lease:
        lease.on_renewed(renewals.put_nowait)
        async with asyncio.timeout(3):
            assert await renewals.get() == 2  # from the background keep-alive
        assert await lease.refresh() == 2
        assert renewals.get_nowait() == 2  # a refresh counts too
        lease.on_renewed(None)
        await lease.refresh()
        assert renewals.empty()


async def test_release_stops_keepalive_without_revoking(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    async with etcd_client.lease(2) as lease:
        await etcd_client.put(etcd_prefix + "k", "v", lease=lease)
        lease.release()
        assert not lease.alive and "released" in str(lease.lost_reason)
        keeper = etcd_client._leases._keepalive
        assert keeper is None or lease.id not in keeper.leases
        info = await etcd_client.time_to_live(lease, keys=True)  # not revoked
        assert info.keys == [(etcd_prefix + "k").encode()]
        await asyncio.sleep(2.5)  # nobody renews it: it expires with its key
        assert (await etcd_client.get(etcd_prefix + "k")).kvs == []
