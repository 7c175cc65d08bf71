"""F3 quorum loss and recovery (reliability.md §6.3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from fault_helpers import Figures, Load, WatchLog, check_writes, hash_check

import aetcd
from aetcd.testing import EtcdCluster

TIMEOUT = 2.0


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("cycles", "outage"),
    [(1, 10.0), pytest.param(5, 10.0, marks=[pytest.mark.soak, pytest.mark.timeout(900)])],
)
async def test_f3_quorum_loss_and_recovery(
    etcd_cluster: EtcdCluster,
    figures: Figures,
    caplog: pytest.LogCaptureFixture,
    cycles: int,
    outage: float,
) -> None:
    """kill 2 of 3 members for 10 s under writers, 4 watches and leases of TTL 30 s.

    Every call returns within its deadline + 200 ms (members without a leader
    refuse at once: hasleader); the watch stream notices the lost leader within
    8 s; all leases survive; writes work again within 10 s of the restart; the
    watches then deliver every revision once, in order.
    """
    caplog.set_level(logging.INFO, logger="aetcd")
    cluster = etcd_cluster
    prefix = "f3/"
    async with (
        aetcd.Client(cluster.endpoints, timeout=TIMEOUT) as client,
        aetcd.Client(cluster.endpoints, timeout=TIMEOUT) as watcher,
        contextlib.AsyncExitStack() as stack,
    ):
        leases = [await stack.enter_async_context(client.lease(30)) for _ in range(5)]
        for i, lease in enumerate(leases):
            await client.put(f"f3-lease/{i}", "held", lease=lease)
        logs = [WatchLog(f"watch{i}") for i in range(4)]
        watches = [await stack.enter_async_context(watcher.watch(prefix, prefix=True)) for _ in logs]
        load = Load(client, prefix, writers=8, rate=150, read_share=0.2, timeout=TIMEOUT)
        stop = asyncio.Event()
        detect: list[float] = []
        recover: list[float] = []
        async with asyncio.TaskGroup() as tg:
            collectors = [tg.create_task(log.collect(w)) for log, w in zip(logs, watches, strict=True)]
            async with asyncio.TaskGroup() as workload:
                workload.create_task(load.run(stop))
                for _ in range(cycles):
                    await asyncio.sleep(3.0)
                    leader = await cluster.leader()
                    follower = next(m for m in cluster.members if m is not leader)
                    killed_at = time.time()
                    leader.kill()
                    follower.kill()
                    await asyncio.sleep(outage)
                    detect.append(_first_no_leader(caplog, killed_at))
                    async with asyncio.TaskGroup() as restart:
                        restart.create_task(leader.start())
                        restart.create_task(follower.start())
                    recover.append(await _first_write(client))
                await asyncio.sleep(2.0)
                stop.set()
            figures.update(load.figures())
            figures.update(await check_writes(load, client))
            final = await client.get(prefix, prefix=True, timeout=30)
            for log in logs:
                await log.caught_up(final.count)
            for collector in collectors:
                collector.cancel()
        figures["watches"] = [log.check(final) for log in logs]
        figures["watch_sees_no_leader_after_s"] = detect
        figures["writes_again_after_restart_s"] = recover
        figures["leases_alive"] = sum(lease.alive for lease in leases)
        ttls = [(await client.time_to_live(lease)).ttl for lease in leases]
        figures["lease_ttls"] = ttls
        figures["hashkv"] = await hash_check(cluster.members, client)
    assert load.max_overrun <= 0.2, f"a call outlived its deadline by {load.max_overrun:.3f} s"
    # etcd itself ends a leaderless watch stream 3-5 s after the kill (its monitor
    # waits out a few election timeouts); 8 s leaves room for a loaded box.
    assert all(0 <= d <= 8.0 for d in detect), detect
    assert max(recover) <= 10.0, recover
    assert figures["leases_alive"] == len(leases) and min(ttls) > 0, ttls


def _first_no_leader(caplog: pytest.LogCaptureFixture, since: float) -> float:
    """Seconds from *since* to the first log line of a watch stream refused for no leader."""
    for record in caplog.records:
        text = record.getMessage()
        if record.created >= since and "watch stream" in text and "no leader" in text:
            return round(record.created - since, 3)
    return -1.0


async def _first_write(client: aetcd.Client) -> float:
    """Seconds until a write succeeds again (each attempt bounded by its deadline)."""
    start = time.monotonic()
    while True:
        try:
            await client.put("f3-probe", "v", timeout=TIMEOUT)
            return round(time.monotonic() - start, 3)
        except aetcd.EtcdError:
            if time.monotonic() - start > 30:
                raise
            await asyncio.sleep(0.1)
