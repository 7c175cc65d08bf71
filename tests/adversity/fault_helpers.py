"""The fault suite (reliability.md §6.3): workload, checkers, figures, tiers.

Every test here runs real etcd members (``EtcdCluster``, started with
``--experimental-initial-corrupt-check=true``), 3.5.3 or newer: ``conftest.py``
refuses 3.5.0-3.5.2, whose members can diverge after a kill -9 under load
(etcd #13766); the suite runs on Debian's 3.5.16 (``scripts/fetch-etcd``). Each
test injects one kind of fault while a rate-limited workload runs, then checks
what the client promised:

* **C1 durability**: every acknowledged write is in the store, with its revision;
* **at-most-once**: every key is written once with a unique value, so a write
  applied twice shows as ``version > 1``;
* **error typing**: a write that raised anything but ``OutcomeUnknownError``
  claims it was not applied, so it must be absent; unknown outcomes are
  resolved (applied or not) and counted;
* **C3 watch**: events strictly ordered, none repeated, none missing compared
  with the final store;
* **C4**: HashKV equal on every member at one revision (a mismatch is labelled
  ``SERVER_BUG``, reliability §1.5: etcd has had crash-consistency bugs).

Each test records its figures (ops, acks, errors by type, longest gap between
successful operations, detection times, ...) with the ``figures`` fixture: they
are printed by the test and again in a summary at the end of the run.

Tiers: the CI tier is every test not marked ``soak`` (at most 10 minutes on 2
cores); ``soak`` variants (more cycles, longer faults) run only with
``AETCD_SOAK=1``.

Where each fault of the plan lives: F1/F2 ``test_member_crash.py``, F3
``test_quorum.py``, F4/F6 ``test_network.py`` (through
:class:`aetcd.testing.FaultProxy`, itself tested in ``test_proxy.py``), F15
``test_auth_faults.py``; F10 NOSPACE is
``tests/integration/test_maintenance.py::test_nospace_alarm_and_recovery``, F16
TLS is ``tests/integration/test_tls.py``, F18 fork is
``tests/integration/test_client.py::test_use_after_fork_raises_clear_error``;
failover details (round robin, silent members, auto-sync, hasleader) are in
``tests/integration/test_failover.py``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import aetcd
from aetcd.testing import EtcdCluster, EtcdServer

SOAK = os.environ.get("AETCD_SOAK") == "1"
_FIGURES: list[tuple[str, dict[str, Any]]] = []


class Figures(dict[str, Any]):
    """What a fault test measured; printed as one JSON line."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def line(self) -> str:
        return f"FIGURES {self.name}: {json.dumps(self, sort_keys=True, default=str)}"


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    result = Figures(request.node.name)
    yield result
    if result:
        print("\n" + result.line())
        _FIGURES.append((result.name, dict(result)))


# -- hygiene ---------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_tasks() -> int:
    return len(asyncio.all_tasks())


# -- the write workload --------------------------------------------------------------


@dataclass
class Load:
    """Writers of unique keys (each written once, with a unique value) at a bounded rate.

    ``txn_share`` of the writes are compare-and-set txns (``version == 0``),
    ``read_share`` of the operations are linearizable reads of a key whose
    write was acknowledged *before* the read started: such a read must see it.
    Records every outcome and the timing figures.
    """

    client: aetcd.Client
    prefix: str
    writers: int = 8
    rate: float = 300.0
    txn_share: float = 0.1
    read_share: float = 0.0
    timeout: float = 2.0
    acked: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    unknown: dict[bytes, tuple[bytes, str]] = field(default_factory=dict)
    refused: dict[bytes, tuple[bytes, str]] = field(default_factory=dict)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    samples: dict[str, str] = field(default_factory=dict)  # first message of each error type
    ops: int = 0
    reads: int = 0
    stale_reads: list[tuple[bytes, str]] = field(default_factory=list)
    longest_gap: float = 0.0  # since the last take_gap()
    worst_gap: float = 0.0  # over the whole run
    gap_at: float = 0.0
    max_overrun: float = 0.0
    _last_ok: float = 0.0
    _t0: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        self._t0 = self._last_ok = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            for n in range(self.writers):
                tg.create_task(self._writer(n, stop))

    def _ok(self) -> None:
        now = time.monotonic()
        gap = now - self._last_ok
        self.longest_gap = max(self.longest_gap, gap)
        if gap > self.worst_gap:
            self.worst_gap, self.gap_at = gap, self._last_ok - self._t0
        self._last_ok = now

    async def _writer(self, n: int, stop: asyncio.Event) -> None:
        rng = random.Random(n)
        interval = self.writers / self.rate
        i = 0
        while not stop.is_set():
            started = time.monotonic()
            if self.read_share and self.acked and rng.random() < self.read_share:
                await self._read(rng)
            else:
                await self._write(f"{self.prefix}{n:02d}/{i:06d}".encode(), rng)
                i += 1
            self.ops += 1
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, interval - elapsed) * rng.uniform(0.8, 1.2))

    async def _write(self, key: bytes, rng: random.Random) -> None:
        value = os.urandom(8).hex().encode()
        started = time.monotonic()
        try:
            if rng.random() < self.txn_share:
                result = await self.client.txn(
                    compare=[aetcd.Compare.version(key) == 0],
                    success=[aetcd.Op.put(key, value)],
                    timeout=self.timeout,
                )
                assert result.succeeded, f"{key!r}: a fresh key already existed"
                revision = result.header.revision
            else:
                revision = (await self.client.put(key, value, timeout=self.timeout)).header.revision
        except aetcd.OutcomeUnknownError as exc:
            self.unknown[key] = (value, type(exc).__name__)
            self._error(type(exc).__name__, exc)
        except aetcd.EtcdError as exc:
            self.refused[key] = (value, f"{type(exc).__name__}: {exc.message}")
            self._error(type(exc).__name__, exc)
        else:
            self.acked[key] = (value, revision)
            self._ok()
        self.max_overrun = max(self.max_overrun, time.monotonic() - started - self.timeout)

    async def _read(self, rng: random.Random) -> None:
        key = rng.choice(list(self.acked))  # acknowledged before this read started
        value, _ = self.acked[key]
        started = time.monotonic()
        try:
            got = await self.client.get(key, timeout=self.timeout)
        except aetcd.EtcdError as exc:
            self._error(f"read:{type(exc).__name__}", exc)
        else:
            self.reads += 1
            self._ok()
            if got.first is None or got.first.value != value:
                self.stale_reads.append((key, repr(got.first)))
        self.max_overrun = max(self.max_overrun, time.monotonic() - started - self.timeout)

    def _error(self, name: str, exc: aetcd.EtcdError) -> None:
        self.errors[name] += 1
        self.samples.setdefault(name, str(exc))

    def take_gap(self) -> float:
        """The longest gap since the last call (for per-phase targets)."""
        now = time.monotonic()
        gap = max(self.longest_gap, now - self._last_ok)
        self.longest_gap = 0.0
        return round(gap, 3)

    def figures(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "acks": len(self.acked),
            "reads": self.reads,
            "unknown": len(self.unknown),
            "refused": len(self.refused),
            "errors": dict(self.errors),
            "error_samples": self.samples,
            "longest_gap_s": round(self.worst_gap, 3),
            "longest_gap_at_s": round(self.gap_at, 1),
            "max_overrun_s": round(self.max_overrun, 3),
        }


async def check_writes(load: Load, reader: aetcd.Client) -> dict[str, Any]:
    """C1, at-most-once and error typing; returns figures, asserts client-side promises."""
    final = await reader.get(load.prefix, prefix=True, timeout=30)
    store = {kv.key: kv for kv in final.kvs}
    lost = [k for k, (v, rev) in load.acked.items() if k not in store or store[k].value != v]
    moved = [k for k, (_, rev) in load.acked.items() if k in store and store[k].mod_revision != rev]
    twice = [k for k, kv in store.items() if kv.version != 1]
    mistyped = [(k, why) for k, (_, why) in load.refused.items() if k in store]
    applied = sum(1 for k in load.unknown if k in store)
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
    assert not moved, f"{len(moved)} acknowledged writes at another revision, e.g. {moved[:3]}"
    assert not twice, f"{len(twice)} writes applied more than once, e.g. {twice[:3]}"
    assert not mistyped, f"writes reported as not applied were applied: {mistyped[:3]}"
    return {
        "lost": 0,
        "applied_twice": 0,
        "unknown_applied": applied,
        "unknown_not_applied": len(load.unknown) - applied,
        "refused_checked_absent": len(load.refused),
    }


class WatchLog:
    """Collects every event of one watch; :meth:`check` compares with the store."""

    def __init__(self, name: str = "watch") -> None:
        self.name = name
        self.events: list[tuple[int, bytes]] = []
        self.start_revision = 0

    async def collect(self, watch: aetcd.Watch) -> None:
        self.start_revision = watch.revision
        async for event in watch:
            self.events.append((event.kv.mod_revision, event.kv.key))

    async def caught_up(self, expected: int, timeout: float = 20.0) -> None:
        """Wait until *expected* events arrived (then a little longer, to see duplicates)."""
        for _ in range(int(timeout / 0.05)):
            if len(self.events) >= expected:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)

    def check(self, final: aetcd.GetResult) -> dict[str, Any]:
        revisions = [r for r, _ in self.events]
        expected = {(kv.mod_revision, kv.key) for kv in final.kvs}
        expected = {e for e in expected if e[0] > self.start_revision}
        seen = set(self.events)
        duplicates = len(self.events) - len(seen)
        disorder = sum(1 for a, b in itertools.pairwise(revisions) if b < a)
        missing = len(expected - seen)
        extra = len(seen - expected)
        figures = {
            "events": len(self.events),
            "missing": missing,
            "duplicates": duplicates,
            "out_of_order": disorder,
            "unexpected": extra,
        }
        assert (missing, duplicates, disorder, extra) == (0, 0, 0, 0), f"{self.name}: {figures}"
        return figures


async def hash_check(members: list[EtcdServer], client: aetcd.Client) -> str:
    """C4: HashKV of every running member at one revision; 'ok' or a SERVER_BUG label."""
    revision = (await client.get("\0", timeout=10)).header.revision
    hashes: dict[str, int] = {}
    for member in members:
        if not member.running:
            continue
        for _ in range(20):  # a restarted member may still be catching up
            try:
                result = await client.hash_kv(revision, endpoint=member.endpoint, timeout=5)
            except aetcd.EtcdError:
                await asyncio.sleep(0.5)
                continue
            hashes[member.name] = result.hash
            break
    if len(set(hashes.values())) > 1:
        return f"SERVER_BUG: HashKV differs at revision {revision}: {hashes}"
    return "ok"


async def leader_changes(cluster: EtcdCluster) -> float:
    """Sum of etcd_server_leader_changes_seen_total over the running members."""
    total = 0.0
    for member in cluster.members:
        if member.running and not member.paused:
            try:
                total += (await member.metrics(timeout=5)).get(
                    "etcd_server_leader_changes_seen_total", 0.0
                )
            except (OSError, TimeoutError):
                pass
    return total


async def baseline(cluster: EtcdCluster, client: aetcd.Client, prefix: str, seconds: float) -> dict[str, Any]:
    """A short no-fault run: the leader must not change (else the box is overloaded)."""
    before = await leader_changes(cluster)
    load = Load(client, prefix + "baseline/", writers=4, rate=200)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(load.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
    after = await leader_changes(cluster)
    return {
        "baseline_ops": load.ops,
        "baseline_errors": dict(load.errors),
        "baseline_leader_changes": after - before,
    }


async def serving_again(member: EtcdServer, timeout: float = 30.0) -> float:
    """Seconds until *member* answers a serializable read through a client of its own."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with aetcd.Client(member.endpoint, timeout=1.0) as one:
        while True:
            try:
                await one.get("probe", serializable=True)
                return loop.time() - start
            except aetcd.EtcdError:
                if loop.time() - start > timeout:
                    raise
                await asyncio.sleep(0.1)
