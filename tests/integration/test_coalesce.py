"""Request coalescing: correct results, errors, limits and cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import aetcd


async def test_concurrent_gets_share_batches(etcd_server: Any, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with aetcd.Client(etcd_server.endpoint) as client:
        await client.txn(success=[aetcd.Op.put(f"{p}{i}", str(i)) for i in range(100)])
        results = await asyncio.gather(*(client.get(f"{p}{i}") for i in range(300)))
        assert [r.kvs[0].value for r in results[:100]] == [str(i).encode() for i in range(100)]
        assert all(not r.kvs for r in results[100:])
        batcher = client._kv._read_batcher
        assert batcher is not None
        # 299 of 300 were coalesced; batches are bounded by max_txn_ops (128).
        assert batcher.requests_coalesced == 299
        assert batcher.batches_sent == 3
        # Reads of one batch are served at one revision.
        assert len({r.header.revision for r in results[1:129]}) == 1


async def test_batch_respects_request_size(etcd_server: Any, etcd_prefix: str) -> None:
    big_key = etcd_prefix + "k" * 200_000  # a few such reads exceed 1.5 MiB together
    async with aetcd.Client(etcd_server.endpoint) as client:
        results = await asyncio.gather(*(client.get(f"{big_key}{i}") for i in range(20)))
        assert len(results) == 20
        batcher = client._kv._read_batcher
        assert batcher is not None and batcher.batches_sent >= 3


async def test_one_bad_read_fails_alone(etcd_server_factory: Any) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        first = await client.put("k", "1")
        latest = await client.put("k", "2")
        await client.compact(latest.header.revision)
        results = await asyncio.gather(
            client.get("k"),
            client.get("k"),
            client.get("k", revision=first.header.revision),  # compacted
            client.get("k"),
            return_exceptions=True,
        )
        assert isinstance(results[2], aetcd.CompactedError)
        for i in (0, 1, 3):
            assert isinstance(results[i], aetcd.GetResult) and results[i].kvs[0].value == b"2"


async def test_serializable_reads_are_not_coalesced(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    batcher = etcd_client._kv._read_batcher
    assert batcher is not None
    before = batcher.requests_coalesced
    await asyncio.gather(*(etcd_client.get(etcd_prefix, serializable=True) for _ in range(10)))
    assert batcher.requests_coalesced == before


async def test_cancelled_reader_does_not_disturb_others(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await etcd_client.put(etcd_prefix + "k", "v")
    tasks = [asyncio.create_task(etcd_client.get(etcd_prefix + "k")) for _ in range(10)]
    await asyncio.sleep(0)  # all issued in one turn
    tasks[3].cancel()
    tasks[7].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError) and isinstance(done[7], asyncio.CancelledError)
    for i, r in enumerate(done):
        if i not in (3, 7):
            assert isinstance(r, aetcd.GetResult) and r.kvs[0].value == b"v"


async def test_deadline_of_batched_reads(etcd_server_factory: Any) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint, timeout=0.5) as client:
        await client.get("warm")
        server.pause()
        await asyncio.sleep(0.1)  # SIGSTOP reaches every etcd thread
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            results = await asyncio.gather(*(client.get("k") for _ in range(5)), return_exceptions=True)
            assert all(isinstance(r, aetcd.DeadlineExceededError) for r in results), results
            assert loop.time() - start < 2.0
        finally:
            server.resume()


async def test_coalesced_writes_share_a_revision(etcd_server: Any, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with aetcd.Client(etcd_server.endpoint, coalesce_writes=True) as client:
        results = await asyncio.gather(*(client.put(f"{p}{i}", str(i)) for i in range(50)))
        revisions = {r.header.revision for r in results}
        assert len(revisions) == 1  # one txn: one revision
        assert (await client.get(p, prefix=True, count_only=True)).count == 50
        # The same key twice in one turn: both writes happen, in order.
        await asyncio.gather(client.put(p + "dup", "a"), client.put(p + "dup", "b"), client.put(p + "dup", "c"))
        kv = (await client.get(p + "dup")).kvs[0]
        assert kv.value == b"c" and kv.version == 3
        deleted = await asyncio.gather(*(client.delete(f"{p}{i}", prev_kv=True) for i in range(10)))
        assert [d.prev_kvs[0].value for d in deleted] == [str(i).encode() for i in range(10)]


async def test_rejected_write_batch_fails_only_the_faulty_write(etcd_server: Any, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with aetcd.Client(etcd_server.endpoint, coalesce_writes=True) as client:
        results = await asyncio.gather(
            client.put(p + "a", "1"),
            client.put(p + "b", "2"),
            client.put(p + "missing", b"", ignore_value=True),  # key not found: rejected
            client.put(p + "c", "3"),
            return_exceptions=True,
        )
        assert isinstance(results[2], aetcd.KeyNotFoundError)
        for i in (0, 1, 3):
            assert isinstance(results[i], aetcd.PutResult)
        assert (await client.get(p, prefix=True, count_only=True)).count == 3


async def test_unknown_outcome_fails_every_write_of_the_batch(etcd_server_factory: Any) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint, timeout=0.5, coalesce_writes=True) as client:
        await client.put("warm", "x")
        server.pause()
        await asyncio.sleep(0.1)  # SIGSTOP reaches every etcd thread
        try:
            results = await asyncio.gather(*(client.put(f"k{i}", "v") for i in range(6)), return_exceptions=True)
        finally:
            server.resume()
        assert all(isinstance(r, aetcd.OutcomeUnknownError) for r in results), results


async def test_close_fails_batched_requests_loudly(etcd_server_factory: Any) -> None:
    server = await etcd_server_factory()
    client = aetcd.Client(server.endpoint, timeout=5)
    await client.get("warm")
    server.pause()
    await asyncio.sleep(0.1)
    try:
        tasks = [asyncio.create_task(client.get("k")) for _ in range(4)]
        await asyncio.sleep(0.2)
        await client.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        server.resume()
    assert all(isinstance(r, aetcd.EtcdError) for r in results), results


def test_bad_flags() -> None:
    with pytest.raises(TypeError):
        aetcd.Client("127.0.0.1:2379", coalesce_reads=1)  # type: ignore[arg-type]


async def test_batched_reads_match_reads_of_their_own(etcd_server: Any, etcd_prefix: str) -> None:
    p = etcd_prefix
    async with aetcd.Client(etcd_server.endpoint) as client, aetcd.Client(
        etcd_server.endpoint, coalesce_reads=False
    ) as plain:
        await client.txn(success=[aetcd.Op.put(f"{p}{i}", str(i)) for i in range(20)])
        calls = [
            lambda c: c.get(f"{p}3"),
            lambda c: c.get(f"{p}1", prefix=True),
            lambda c: c.get(p, prefix=True, limit=5, sort_order=aetcd.SortOrder.DESCEND),
            lambda c: c.get(f"{p}2", range_end=f"{p}5", keys_only=True),
            lambda c: c.get(p, prefix=True, count_only=True),
            lambda c: c.get(f"{p}missing"),
        ]
        batcher = client._kv._read_batcher
        assert batcher is not None
        before = batcher.requests_coalesced
        batched = await asyncio.gather(*(call(client) for call in calls))
        assert batcher.requests_coalesced == before + len(calls) - 1
        alone = [await call(plain) for call in calls]
        assert [(r.kvs, r.count, r.more) for r in batched] == [(r.kvs, r.count, r.more) for r in alone]
        for b, a in zip(batched, alone, strict=True):
            h, g = b.header, a.header
            assert (h.cluster_id, h.member_id, h.raft_term) == (g.cluster_id, g.member_id, g.raft_term)
            assert h.revision == g.revision


async def test_batched_reads_in_a_namespace(etcd_server: Any, etcd_prefix: str) -> None:
    async with aetcd.Client(etcd_server.endpoint, namespace=etcd_prefix + "ns/") as client:
        await client.txn(success=[aetcd.Op.put(f"k{i}", str(i)) for i in range(10)])
        results = await asyncio.gather(*(client.get(f"k{i}") for i in range(10)))
        assert [r.kvs[0].key for r in results] == [f"k{i}".encode() for i in range(10)]
        prefixed = await asyncio.gather(client.get("k1"), client.get("k", prefix=True))
        assert [kv.key for kv in prefixed[1].kvs] == sorted(f"k{i}".encode() for i in range(10))
        batcher = client._kv._read_batcher
        assert batcher is not None and batcher.requests_coalesced == 9
