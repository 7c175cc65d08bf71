"""The recipes as blocking calls and ``with`` blocks, on a real etcd."""

from __future__ import annotations

import threading
import time

import pytest

import aetcd
from aetcd import sync
from aetcd.sync import recipes


def test_lock_excludes_between_threads(sync_client: sync.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "lock"
    inside = 0
    most = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        for _ in range(3):
            with sync_client.lock(name, ttl=10, timeout=30) as lock:
                assert lock.held and lock.key.startswith(name.encode() + b"/")
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.01)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    assert sync_client.get(name + "/", prefix=True).count == 0


def test_lock_timeout_and_try_acquire(sync_client: sync.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "lock"
    with sync_client.lock(name) as held:
        assert held.is_owner()
        other = sync_client.lock(name)
        assert other.try_acquire() is False
        with pytest.raises(aetcd.LockTimeoutError):
            other.acquire(timeout=0.3)
    assert sync_client.get(name + "/", prefix=True).count == 0


def test_election_campaign_observe_resign(sync_client: sync.Client, etcd_prefix: str) -> None:
    name = etcd_prefix + "election"
    election = sync_client.election(name, ttl=10)
    assert election.leader() is None
    election.campaign("me")
    assert election.is_leader
    leader = election.leader()
    assert leader is not None and leader.value == b"me"
    observed = sync_client.election(name).observe()
    assert next(observed).value == b"me"
    election.proclaim("again")
    assert next(observed).value == b"again"
    observed.close()
    election.resign()
    assert not election.is_leader and election.leader() is None


def test_heartbeat_and_session(sync_client: sync.Client, etcd_prefix: str) -> None:
    key = etcd_prefix + "hb"
    with sync_client.heartbeat(key, "live", ttl=5) as hb:
        assert hb.alive
        assert recipes.is_alive(sync_client, key)
    assert not recipes.is_alive(sync_client, key)
    with sync_client.session(ttl=10) as session:
        assert session.alive and session.lease.alive
        sync_client.put(etcd_prefix + "s", "v", lease=session.lease)
    assert sync_client.get(etcd_prefix + "s").count == 0


def test_register_and_discover(sync_client: sync.Client, etcd_prefix: str) -> None:
    service = etcd_prefix + "svc"
    with sync_client.discover(service) as d, sync_client.register(service, "10.0.0.7:80"):
        d.wait_for(sync_client.get("x").header.revision, timeout=5)
        assert set(d.instances) == {"10.0.0.7:80"}


def test_config_mirror(sync_client: sync.Client, etcd_prefix: str) -> None:
    sync_client.put(etcd_prefix + "a", "1")
    with sync_client.config(etcd_prefix) as cfg:
        assert dict(cfg) == {"a": b"1"}
        changes = cfg.changes()
        rev = sync_client.put(etcd_prefix + "b", "2").header.revision
        change = next(changes)
        assert (change.key, change.value, change.revision) == ("b", b"2", rev)
        cfg.wait_for(rev)
        assert cfg["b"] == b"2" and len(cfg) == 2


def test_stm_with_a_plain_function(sync_client: sync.Client, etcd_prefix: str) -> None:
    a, b = etcd_prefix + "a", etcd_prefix + "b"
    sync_client.put(a, "100")
    sync_client.put(b, "0")

    def transfer(tx: recipes.STM) -> int:
        left = int(tx.get(a)) - 10
        tx.put(a, str(left))
        tx.put(b, str(int(tx.get(b)) + 10))
        return left

    threads = [threading.Thread(target=recipes.stm, args=(sync_client, transfer)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recipes.stm(sync_client, transfer) == 40
    assert sync_client.get(a).first.value == b"40"  # type: ignore[union-attr]
    assert sync_client.get(b).first.value == b"60"  # type: ignore[union-attr]

    def fails(tx: recipes.STM) -> None:
        tx.put(a, "0")
        raise ValueError("abort")

    with pytest.raises(ValueError, match="abort"):
        recipes.stm(sync_client, fails)
    assert sync_client.get(a).first.value == b"40"  # type: ignore[union-attr]


def test_contrib(sync_client: sync.Client, etcd_prefix: str) -> None:
    q = recipes.Queue(sync_client, etcd_prefix + "q")
    q.enqueue("1")
    q.enqueue("2")
    assert [q.dequeue(), q.dequeue()] == [b"1", b"2"]
    pq = recipes.PriorityQueue(sync_client, etcd_prefix + "pq")
    pq.enqueue("low", 9)
    pq.enqueue("high", 1)
    assert pq.dequeue() == b"high"
    barrier = recipes.Barrier(sync_client, etcd_prefix + "b")
    assert barrier.hold()
    assert barrier.release()
    barrier.wait()  # released: returns at once
    rw = recipes.RWMutex(sync_client, etcd_prefix + "rw")
    with rw.read_lock(timeout=5) as r1, rw.read_lock(timeout=5) as r2:
        assert r1.held and r2.held
    with rw.write_lock(timeout=5) as w:
        assert w.held


def test_double_barrier_timeouts(sync_client: sync.Client, etcd_prefix: str) -> None:
    """The blocking twin passes enter/leave's timeout through."""
    first = recipes.DoubleBarrier(sync_client, etcd_prefix + "db", 1)
    first.enter(timeout=0)  # it completes the barrier on its own
    first.leave(timeout=0)  # and is the last one out
    waiting = recipes.DoubleBarrier(sync_client, etcd_prefix + "db", 2)
    with pytest.raises(TimeoutError):
        waiting.enter(timeout=0)
    assert waiting.key is None and sync_client.get(etcd_prefix, prefix=True).count == 0
