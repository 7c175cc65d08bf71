"""F1 leader kill and F2 follower kill / SIGSTOP under writers (reliability.md §6.3)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from fault_helpers import (
    Figures,
    Load,
    WatchLog,
    baseline,
    check_writes,
    hash_check,
    serving_again,
)

import aetcd
from aetcd.testing import EtcdCluster

TIMEOUT = 2.0  # per-call deadline of the workload


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "cycles", [3, pytest.param(20, marks=[pytest.mark.soak, pytest.mark.timeout(1200)])]
)
async def test_f1_leader_kill_under_writers(
    etcd_cluster: EtcdCluster, figures: Figures, cycles: int
) -> None:
    """kill -9 the leader, 5 s down, restart; 8 writers (10 % CAS txns) at 300 ops/s.

    0 acknowledged writes lost, each applied at most once, failures typed
    (unknown outcomes as OutcomeUnknownError, never success), the watch sees
    every revision once and in order, and the restarted member serves again.
    """
    cluster = etcd_cluster
    prefix = "f1/"
    async with (
        aetcd.Client(cluster.endpoints, timeout=TIMEOUT) as client,
        aetcd.Client(cluster.endpoints, timeout=TIMEOUT) as watcher,
    ):
        figures.update(await baseline(cluster, client, "f1-baseline/", 2.0))
        log = WatchLog()
        load = Load(client, prefix, writers=8, rate=300, txn_share=0.1, timeout=TIMEOUT)
        stop = asyncio.Event()
        serve_times: list[float] = []
        elections: list[float] = []
        async with watcher.watch(prefix, prefix=True) as watch, asyncio.TaskGroup() as tg:
            collector = tg.create_task(log.collect(watch))
            async with asyncio.TaskGroup() as workload:
                workload.create_task(load.run(stop))
                for _ in range(cycles):
                    await asyncio.sleep(2.0)
                    leader = await cluster.leader()
                    killed = time.monotonic()
                    leader.kill()
                    await cluster.leader(timeout=30)  # the survivors elect a new one
                    elections.append(round(time.monotonic() - killed, 3))
                    await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - killed)))
                    await leader.start()
                    serve_times.append(round(await serving_again(leader), 3))
                await asyncio.sleep(2.0)
                stop.set()
            figures.update(load.figures())
            figures["cycles"] = cycles
            figures["restarted_member_serves_after_s"] = serve_times
            figures["election_s"] = elections
            figures.update(await check_writes(load, client))
            final = await client.get(prefix, prefix=True, timeout=30)
            await log.caught_up(final.count)
            collector.cancel()
        figures["watch"] = log.check(final)
        figures["hashkv"] = await hash_check(cluster.members, client)
    assert load.acked, "no write succeeded"
    assert max(serve_times) <= 10.0, serve_times
    assert load.max_overrun <= 0.2, f"a call outlived its deadline by {load.max_overrun:.3f} s"
    if 3.0 < load.worst_gap <= max(elections) + 0.5:
        # Nobody can write without a leader: on a busy box a slow election (the
        # server's doing, measured above) explains a gap past the target.
        figures["SERVER_SLOW"] = f"election took {max(elections)} s; gap {load.worst_gap:.2f} s"
    else:
        assert load.worst_gap <= 3.0, f"longest gap between successes {load.worst_gap:.2f} s"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("kills", "stops", "stop_seconds"),
    [
        (2, 1, 10.0),
        pytest.param(10, 5, 30.0, marks=[pytest.mark.soak, pytest.mark.timeout(1800)]),
    ],
)
async def test_f2_follower_kill_and_sigstop(
    etcd_cluster: EtcdCluster, figures: Figures, kills: int, stops: int, stop_seconds: float
) -> None:
    """kill -9 a follower (3 s down), then SIGSTOP one, under writers and linearizable reads.

    0 lost; no call outlives its deadline by more than 200 ms; the longest gap
    between successful operations stays under 1.5 s for a kill (unless the
    loaded box made the cluster elect a new leader meanwhile: SERVER_SLOW) and
    under the per-call timeout + 1 s for a SIGSTOP (the calls already in flight
    on the frozen member wait for their deadline; the member is avoided after
    that).
    """
    cluster = etcd_cluster
    prefix = "f2/"
    async with aetcd.Client(cluster.endpoints, timeout=TIMEOUT) as client:
        load = Load(client, prefix, writers=8, rate=300, read_share=0.3, timeout=TIMEOUT)
        stop = asyncio.Event()
        kill_gaps: list[float] = []
        kill_elections: list[bool] = []  # did the leader change during that kill?
        stop_gaps: list[float] = []
        kill_stale = 0
        async with asyncio.TaskGroup() as workload:
            workload.create_task(load.run(stop))
            for _ in range(kills):
                await asyncio.sleep(2.0)
                leader = await cluster.leader()
                follower = next(m for m in cluster.members if m is not leader)
                term = await _raft_term(cluster, client)
                load.take_gap()
                follower.kill()
                await asyncio.sleep(3.0)
                await follower.start()
                await asyncio.sleep(2.0)
                kill_gaps.append(load.take_gap())
                kill_elections.append(await _raft_term(cluster, client) > term)
            kill_stale = len(load.stale_reads)
            for _ in range(stops):
                await asyncio.sleep(2.0)
                leader = await cluster.leader()
                follower = next(m for m in cluster.members if m is not leader)
                load.take_gap()
                follower.pause()
                try:
                    await asyncio.sleep(stop_seconds)
                finally:
                    follower.resume()
                await asyncio.sleep(2.0)
                stop_gaps.append(load.take_gap())
            stop.set()
        figures.update(load.figures())
        figures["kill_gaps_s"] = kill_gaps
        figures["kill_leader_changed"] = kill_elections
        figures["sigstop_gaps_s"] = stop_gaps
        figures["sigstop_seconds"] = stop_seconds
        figures["suspect_after_run"] = [m.endpoint.address for m in client._t.members if m.suspect]
        figures.update(await check_writes(load, client))
        stale_under_stop = len(load.stale_reads) - kill_stale
        if stale_under_stop:
            # etcd < 3.5.28 can serve stale reads from a paused member (etcd#20418).
            figures["SERVER_BUG"] = f"{stale_under_stop} stale reads under SIGSTOP (etcd#20418)"
        figures["hashkv"] = await hash_check(cluster.members, client)
    assert load.acked and load.reads, "no write or no read succeeded"
    assert kill_stale == 0, f"stale linearizable reads: {load.stale_reads[:3]}"
    assert load.max_overrun <= 0.2, f"a call outlived its deadline by {load.max_overrun:.3f} s"
    # Killing a follower leaves the leader in place; if the loaded box made the
    # cluster elect a new one meanwhile (as in F1, nobody can write without a
    # leader), that gap is the server's doing.
    cycles = list(zip(kill_gaps, kill_elections, strict=True))
    if slow := [gap for gap, elected in cycles if elected and gap > 1.5]:
        figures["SERVER_SLOW"] = f"the leader changed during a follower kill; gaps {slow} s"
    assert all(gap <= 1.5 or elected for gap, elected in cycles), kill_gaps
    assert max(stop_gaps) <= TIMEOUT + 1.0, stop_gaps


async def _raft_term(cluster: EtcdCluster, client: aetcd.Client) -> int:
    """The highest raft term among the running members: it grows with each election."""
    terms = [0]
    for member in cluster.members:
        if member.running and not member.paused:
            with contextlib.suppress(aetcd.EtcdError):
                terms.append((await client.status(member.endpoint, timeout=5)).raft_term)
    return max(terms)
