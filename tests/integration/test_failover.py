"""Several endpoints: round robin, failover around dead and silent members,
hasleader, endpoint auto-sync (reliability.md §1.2 "Balancer", §1.4)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

import aetcd
from aetcd._channel import Transport
from aetcd._pb import rpc_pb2
from aetcd.config import ClientConfig
from aetcd.testing import EtcdCluster, EtcdServer, FaultProxy


async def _ranges(member: EtcdServer) -> float:
    metrics = await member.metrics()
    return metrics.get("grpc_server_started_total", 0.0)


async def test_round_robin_reaches_every_member_and_a_restarted_one_again(
    etcd_cluster: EtcdCluster,
) -> None:
    cluster = etcd_cluster
    async with aetcd.Client(cluster.endpoints, timeout=5) as client:
        before = [await _ranges(m) for m in cluster.members]
        for i in range(30):
            await client.get(f"rr/{i}", serializable=True)
        after = [await _ranges(m) for m in cluster.members]
        served = [b - a for a, b in zip(before, after, strict=True)]
        assert all(n >= 5 for n in served), served  # each member got its share

        victim = cluster.members[0]
        victim.kill()
        start = time.monotonic()
        for i in range(30):  # nothing waits for the dead member
            await client.get(f"rr/{i}", serializable=True)
        assert time.monotonic() - start < 3.0
        await victim.start()
        # Reconnect backoff is capped at 2 s: the member is back in rotation soon.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        base = await _ranges(victim)
        while await _ranges(victim) - base < 3:
            assert loop.time() < deadline, "the restarted member got no calls again"
            for i in range(6):
                await client.get(f"rr/{i}", serializable=True)
            await asyncio.sleep(0.2)


async def test_dead_endpoint_in_the_list_costs_nothing(
    etcd_cluster: EtcdCluster, unused_tcp_port: int
) -> None:
    endpoints = [f"127.0.0.1:{unused_tcp_port}", *etcd_cluster.endpoints]
    async with aetcd.Client(endpoints, timeout=2) as client:
        start = time.monotonic()
        for i in range(20):
            await client.put(f"dead/{i}", "v")  # writes too: never sent to the dead one
            assert (await client.get(f"dead/{i}")).kvs[0].value == b"v"
        assert time.monotonic() - start < 5.0
        watch_member = None
        async with client.watch("dead/x") as watch:
            watch_member = client._t.stream_members["/etcdserverpb.Watch/Watch"]
            await client.put("dead/x", "1")
            async with asyncio.timeout(5):
                assert (await anext(aiter(watch))).kv.value == b"1"
        assert watch_member.port != unused_tcp_port


@pytest.mark.timeout(120)
async def test_silent_member_is_avoided_within_the_deadline(etcd_cluster: EtcdCluster) -> None:
    """A blackholed member (connection open, nothing answered) costs reads one
    attempt (a third of the deadline), writes at most the calls already sent to
    it; then it is avoided until it answers a probe again."""
    cluster = etcd_cluster
    async with FaultProxy(cluster.endpoints) as proxy, aetcd.Client(proxy.endpoints, timeout=3) as client:
        for i in range(6):  # connect to every member
            await client.get(f"silent/{i}")
        await proxy.blackhole(0)
        start = time.monotonic()
        for i in range(9):  # three rounds of round robin: one lands on the silent member
            await client.get(f"silent/{i}")
        reads = time.monotonic() - start
        assert reads < 3.0, f"reads took {reads:.2f} s"
        silent = client._t.members[0]
        assert silent.suspect
        start = time.monotonic()
        for i in range(20):
            await client.put(f"silent/{i}", "v")  # no write goes to the suspect member
        assert time.monotonic() - start < 3.0
        await proxy.passthrough(0)
        await proxy.reset(0)  # its connection lost its bytes: start a new one
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while silent.suspect:  # the probe notices it answers again
            assert loop.time() < deadline, "the member was never trusted again"
            await asyncio.sleep(0.2)
        print(f"\nsilent member: reads {reads:.3f} s, trusted again after the probe")


async def test_paused_member_does_not_stall_reads(etcd_cluster: EtcdCluster) -> None:
    cluster = etcd_cluster
    async with aetcd.Client(cluster.endpoints, timeout=3) as client:
        for i in range(6):
            await client.get(f"pause/{i}")
        leader = await cluster.leader()
        follower = next(m for m in cluster.members if m is not leader)
        follower.pause()
        try:
            worst = 0.0
            for i in range(12):
                start = time.monotonic()
                await client.get(f"pause/{i}")
                worst = max(worst, time.monotonic() - start)
            # One attempt of max(1 s, 3 s / 3) on the paused member, then the read is
            # served elsewhere: well under the 3 s deadline, with 1 s for the retry
            # on a loaded machine.
            assert worst < 2.0, worst
        finally:
            follower.resume()


LEADER_CALLS = (
    rpc_pb2.PutRequest(key=b"k"),
    rpc_pb2.RangeRequest(key=b"k"),
    rpc_pb2.TxnRequest(),
    rpc_pb2.DeleteRangeRequest(key=b"k"),
    rpc_pb2.LeaseGrantRequest(TTL=5),
)
OTHER_CALLS = (rpc_pb2.RangeRequest(key=b"k", serializable=True), rpc_pb2.StatusRequest())


def test_hasleader_always_with_require_leader_true() -> None:
    transport = Transport(ClientConfig.build("127.0.0.1:1", require_leader=True))
    transport._set_token("t")
    for request in LEADER_CALLS:
        assert transport._metadata_for(request) == (("token", "t"), ("hasleader", "true"))
    for request in OTHER_CALLS:
        assert transport._metadata_for(request) == (("token", "t"),)


def test_hasleader_never_with_require_leader_false() -> None:
    transport = Transport(ClientConfig.build("127.0.0.1:1", require_leader=False))
    transport.note_trouble()
    for request in LEADER_CALLS + OTHER_CALLS:
        assert transport._metadata_for(request) is None


def test_hasleader_by_default_only_after_trouble(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = Transport(ClientConfig.build("127.0.0.1:1"))
    for request in LEADER_CALLS + OTHER_CALLS:
        assert transport._metadata_for(request) is None  # a healthy cluster does not pay for it
    transport.note_trouble()
    for request in LEADER_CALLS:
        assert transport._metadata_for(request) == (("hasleader", "true"),)
    for request in OTHER_CALLS:
        assert transport._metadata_for(request) is None
    later = time.monotonic() + 31
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert transport._metadata_for(LEADER_CALLS[0]) is None  # calm again after 30 s
    with pytest.raises(TypeError):
        ClientConfig.build("127.0.0.1:1", require_leader=1)  # type: ignore[arg-type]


@pytest.mark.timeout(120)
async def test_quorum_loss_refuses_writes_fast_once_trouble_is_seen() -> None:
    """Without hasleader a write to a member that lost its leader hangs until
    the deadline (outcome unknown); with it the member refuses at once
    (provably unapplied). The default turns the check on after the first
    trouble; require_leader=True has it from the start. None of the refused
    or timed-out writes was applied."""
    async with EtcdCluster(size=3) as cluster:
        survivor = cluster.members[0]
        async with (
            aetcd.Client(survivor.endpoint, timeout=5) as default,
            aetcd.Client(survivor.endpoint, timeout=5, require_leader=True) as strict,
        ):
            await default.put("q/k", "1")
            await strict.put("q/k", "2")
            for member in cluster.members[1:]:
                member.kill()
            # Wait until the survivor knows it has no leader (hasleader says so).
            deadline = time.monotonic() + 30
            while True:
                try:
                    await strict.put("q/k", "3", timeout=2)
                except aetcd.NoLeaderError:
                    break
                except aetcd.OutcomeUnknownError:
                    pass
                assert time.monotonic() < deadline, "the survivor never noticed it lost its leader"

            # Refused (and retried until the deadline in case a leader comes
            # back): a typed, provably unapplied failure, never "unknown".
            with pytest.raises(aetcd.NoLeaderError) as refused:
                await strict.put("q/k", "4", timeout=2)
            assert not isinstance(refused.value, aetcd.OutcomeUnknownError)

            assert not default._t.require_leader()
            with pytest.raises(aetcd.OutcomeUnknownError):
                await default.put("q/k", "5", timeout=1.5)  # hangs: no check yet
            assert default._t.require_leader()  # the timeout was trouble
            with pytest.raises(aetcd.NoLeaderError) as refused:
                await default.put("q/k", "6", timeout=2)
            assert not isinstance(refused.value, aetcd.OutcomeUnknownError)
        async with aetcd.Client(cluster.endpoints[0], timeout=5) as fresh:
            assert (await fresh.get("q/k", serializable=True)).first.value == b"2"  # type: ignore[union-attr]


@pytest.mark.timeout(90)
async def test_auto_sync_learns_the_members_and_survives_losing_the_seed(
    etcd_cluster: EtcdCluster,
) -> None:
    cluster = etcd_cluster
    leader = await cluster.leader()
    # A follower: losing the leader would add an election (and its timeouts) to the test.
    seed = next(m for m in cluster.members if m is not leader)
    client = aetcd.Client(seed.endpoint, timeout=3, auto_sync_interval=0.3)
    async with client:
        assert client.endpoints == [seed.endpoint]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(client._t.endpoints) < 3:
            assert loop.time() < deadline, "auto-sync never learned the other members"
            await asyncio.sleep(0.1)
        assert sorted(e.address for e in client._t.endpoints) == sorted(cluster.endpoints)
        seed.kill()
        # A write sent to the seed in the instant before its connection is known
        # to be dead has an unknown outcome (by design): wait until it is known.
        gone = next(m for m in client._t.members if m.endpoint.address == seed.endpoint)
        while gone.state(connect=False) is grpc.ChannelConnectivity.READY:
            assert loop.time() < deadline + 10, "the killed seed still looks connected"
            await asyncio.sleep(0.02)
        for i in range(10):
            await client.put(f"sync/{i}", "v")
            assert (await client.get(f"sync/{i}")).kvs[0].value == b"v"
        await seed.start()


async def test_sync_endpoints_on_demand_and_validation(
    etcd_cluster: EtcdCluster,
) -> None:
    async with aetcd.Client(etcd_cluster.endpoints[0], timeout=3) as client:
        await client.get("x")
        found = await client._t.sync_endpoints()
        assert sorted(e.address for e in found) == sorted(etcd_cluster.endpoints)
    with pytest.raises(aetcd.InvalidArgumentError):
        ClientConfig.build("127.0.0.1:1", auto_sync_interval=0)
