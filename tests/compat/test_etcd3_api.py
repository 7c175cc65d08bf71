"""python-etcd3's public API on ``aetcd.compat.etcd3``, against a real etcd."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from aetcd.compat import etcd3


@pytest.fixture
def client(etcd_server: Any) -> Iterator[etcd3.Etcd3Client]:
    host, port = etcd_server.endpoint.rsplit(":", 1)
    with etcd3.client(host=host, port=int(port), timeout=10) as c:
        yield c


def test_kv_shapes(client: etcd3.Etcd3Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    assert client.get(p + "missing") == (None, None)
    client.put(p + "a", "1")
    client.put(p + "b", b"2")
    value, meta = client.get(p + "a")
    assert value == b"1" and meta is not None
    assert meta.key == (p + "a").encode() and meta.version == 1 and meta.lease_id == 0
    assert [v for v, _ in client.get_prefix(p)] == [b"1", b"2"]
    assert [v for v, _ in client.get_prefix(p, sort_order="descend")] == [b"2", b"1"]
    assert [m.key for _, m in client.get_range(p + "a", p + "b")] == [(p + "a").encode()]
    assert client.get_prefix_response(p, count_only=True).count == 2
    assert client.put_if_not_exists(p + "a", "x") is False
    assert client.put_if_not_exists(p + "c", "3") is True
    assert client.replace(p + "c", "3", "4") is True
    assert client.replace(p + "c", "3", "5") is False
    assert client.delete(p + "c") is True
    assert client.delete(p + "c") is False
    assert client.delete_prefix(p).deleted == 2


def test_transaction(client: etcd3.Etcd3Client, etcd_prefix: str) -> None:
    key = etcd_prefix + "k"
    tx = client.transactions
    ok, responses = client.transaction(
        compare=[tx.version(key) == 0, tx.create(key) == 0],
        success=[tx.put(key, "v"), tx.get(key)],
        failure=[],
    )
    assert ok and responses[1][0][0] == b"v"
    ok, responses = client.transaction(
        compare=[tx.value(key) == "other"], success=[], failure=[tx.get(key), tx.delete(key)]
    )
    assert not ok and responses[0][0][0] == b"v"
    assert client.get(key) == (None, None)


def test_lease(client: etcd3.Etcd3Client, etcd_prefix: str) -> None:
    lease = client.lease(30)
    client.put(etcd_prefix + "k", "v", lease=lease)
    assert 0 < lease.remaining_ttl <= 30 and lease.granted_ttl == 30
    assert lease.keys == [(etcd_prefix + "k").encode()]
    assert lease.refresh()[0].TTL == 30
    lease.revoke()
    assert client.get(etcd_prefix + "k") == (None, None)


def test_watches(client: etcd3.Etcd3Client, etcd_prefix: str) -> None:
    events, cancel = client.watch_prefix(etcd_prefix, prev_kv=True)
    client.put(etcd_prefix + "a", "1")
    client.put(etcd_prefix + "a", "2")
    client.delete(etcd_prefix + "a")
    first, second, third = next(events), next(events), next(events)
    assert isinstance(first, etcd3.events.PutEvent) and first.value == b"1"
    assert second.prev_value == b"1" and second.value == b"2"
    assert isinstance(third, etcd3.events.DeleteEvent)
    cancel()
    assert list(events) == []

    # Events of one txn stay in one response.
    responses, cancel = client.watch_prefix_response(etcd_prefix)
    tx = client.transactions
    client.transaction(compare=[], success=[tx.put(etcd_prefix + "x", "1"),
                                            tx.put(etcd_prefix + "y", "2")])  # fmt: skip
    assert [e.key for e in next(responses).events] == [
        (etcd_prefix + "x").encode(),
        (etcd_prefix + "y").encode(),
    ]
    cancel()

    with pytest.raises(etcd3.exceptions.WatchTimedOut):
        client.watch_once(etcd_prefix + "z", timeout=0.2)

    got: list[Any] = []
    seen = threading.Event()

    def callback(response: Any) -> None:
        # A callback may use the client (python-etcd3 deadlocked here).
        got.append((response.events[0].value, client.get(etcd_prefix + "z")[0]))
        seen.set()

    wid = client.add_watch_callback(etcd_prefix + "z", callback)
    client.put(etcd_prefix + "z", "zz")
    assert seen.wait(10)
    assert got == [(b"zz", b"zz")]
    client.cancel_watch(wid)


def test_untranslated_errors_are_grpc_errors(client: etcd3.Etcd3Client, etcd_prefix: str) -> None:
    rev = client.put(etcd_prefix + "k", "v").header.revision
    client.compact(rev)
    with pytest.raises(grpc.RpcError) as info:
        client.compact(rev)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE  # type: ignore[attr-defined]


def test_cluster_and_maintenance(client: etcd3.Etcd3Client) -> None:
    members = list(client.members)
    assert len(members) == 1 and members[0].client_urls
    status = client.status()
    assert status.leader is not None and status.leader.id == members[0].id
    assert status.db_size > 0 and status.version
    assert isinstance(client.hash(), int)
    assert list(client.list_alarms()) == []
