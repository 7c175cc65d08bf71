"""Every KV option against a real etcd."""

from __future__ import annotations

import pytest

import aetcd
from aetcd import SortOrder, SortTarget


async def test_put_get_roundtrip_str_and_bytes(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    put = await etcd_client.put(etcd_prefix + "a", "héllo")
    assert put.header.revision > 0
    assert put.prev_kv is None
    await etcd_client.put((etcd_prefix + "b").encode(), b"\x00\xff")
    await etcd_client.put(etcd_prefix + "c", bytearray(b"ba"))
    await etcd_client.put(etcd_prefix + "d", memoryview(b"mv"))
    a = (await etcd_client.get(etcd_prefix + "a")).first
    assert a is not None
    assert a.key == (etcd_prefix + "a").encode()
    assert a.value == "héllo".encode()
    assert a.version == 1
    assert a.create_revision == a.mod_revision == put.header.revision
    assert a.lease == 0
    b = (await etcd_client.get(etcd_prefix + "b")).first
    assert b is not None and b.value == b"\x00\xff"
    assert (await etcd_client.get(etcd_prefix + "c")).kvs[0].value == b"ba"
    assert (await etcd_client.get(etcd_prefix + "d")).kvs[0].value == b"mv"


async def test_get_missing_key(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    res = await etcd_client.get(etcd_prefix + "nope")
    assert res.kvs == [] and res.count == 0 and not res.more
    assert res.first is None
    assert len(res) == 0
    assert list(res) == []
    assert res.header.revision > 0 and res.header.cluster_id != 0 and res.header.member_id != 0
    assert res.header.raft_term >= 1


async def test_results_are_frozen(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await etcd_client.put(etcd_prefix + "k", "v")
    res = await etcd_client.get(etcd_prefix + "k")
    with pytest.raises(AttributeError):
        res.kvs[0].value = b"x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        res.count = 3  # type: ignore[misc]


async def _fill(client: aetcd.Client, prefix: str, n: int = 5) -> list[int]:
    revs = []
    for i in range(n):
        revs.append((await client.put(f"{prefix}k{i}", f"v{i}")).header.revision)
    return revs


async def test_prefix_range_and_from_key(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await _fill(etcd_client, etcd_prefix)
    await etcd_client.put(etcd_prefix[:-1] + "0", "outside")  # sorts right after the prefix
    res = await etcd_client.get(etcd_prefix, prefix=True)
    assert [kv.key for kv in res] == [f"{etcd_prefix}k{i}".encode() for i in range(5)]
    assert res.count == 5
    rng = await etcd_client.get(etcd_prefix + "k1", range_end=etcd_prefix + "k3")
    assert [kv.value for kv in rng] == [b"v1", b"v2"]
    frm = await etcd_client.get(etcd_prefix + "k3", from_key=True)
    keys = [kv.key for kv in frm]
    assert keys[:2] == [f"{etcd_prefix}k3".encode(), f"{etcd_prefix}k4".encode()]
    assert (etcd_prefix[:-1] + "0").encode() in keys


async def test_limit_more_and_count(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await _fill(etcd_client, etcd_prefix)
    res = await etcd_client.get(etcd_prefix, prefix=True, limit=2)
    assert len(res) == 2 and res.more and res.count == 5
    res = await etcd_client.get(etcd_prefix, prefix=True, limit=5)
    assert len(res) == 5 and not res.more


async def test_sort_orders_and_targets(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    # Values sort in the opposite order of keys; versions differ per key.
    for i in range(4):
        await etcd_client.put(f"{etcd_prefix}k{i}", f"v{9 - i}")
    for _ in range(3):
        await etcd_client.put(f"{etcd_prefix}k0", "v9")
    desc = await etcd_client.get(etcd_prefix, prefix=True, sort_order=SortOrder.DESCEND)
    assert [kv.key[-1:] for kv in desc] == [b"3", b"2", b"1", b"0"]
    by_value = await etcd_client.get(
        etcd_prefix, prefix=True, sort_target=SortTarget.VALUE, sort_order=SortOrder.ASCEND
    )
    assert [kv.value for kv in by_value] == [b"v6", b"v7", b"v8", b"v9"]
    by_version = await etcd_client.get(
        etcd_prefix, prefix=True, sort_target=SortTarget.VERSION, sort_order=SortOrder.DESCEND
    )
    assert by_version.kvs[0].key.endswith(b"k0") and by_version.kvs[0].version == 4
    by_create = await etcd_client.get(
        etcd_prefix, prefix=True, sort_target=SortTarget.CREATE, sort_order=SortOrder.DESCEND
    )
    assert by_create.kvs[0].key.endswith(b"k3")
    by_mod = await etcd_client.get(etcd_prefix, prefix=True, sort_target=SortTarget.MOD)
    assert by_mod.kvs[-1].key.endswith(b"k0")  # target alone means ascending
    last_created = await etcd_client.get(
        etcd_prefix, prefix=True, sort_target=SortTarget.CREATE, sort_order=SortOrder.DESCEND,
        limit=1,
    )
    assert len(last_created) == 1 and last_created.more


async def test_revision_reads(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    revs = await _fill(etcd_client, etcd_prefix, 3)
    await etcd_client.put(etcd_prefix + "k0", "changed")
    old = await etcd_client.get(etcd_prefix + "k0", revision=revs[0])
    assert old.kvs[0].value == b"v0"
    at_second = await etcd_client.get(etcd_prefix, prefix=True, revision=revs[1])
    assert [kv.key for kv in at_second] == [f"{etcd_prefix}k{i}".encode() for i in range(2)]
    now = await etcd_client.get(etcd_prefix + "k0")
    assert now.kvs[0].value == b"changed" and now.kvs[0].version == 2


async def test_serializable_keys_only_count_only(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await _fill(etcd_client, etcd_prefix)
    ser = await etcd_client.get(etcd_prefix + "k1", serializable=True)
    assert ser.kvs[0].value == b"v1"
    keys = await etcd_client.get(etcd_prefix, prefix=True, keys_only=True)
    assert len(keys) == 5 and all(kv.value == b"" for kv in keys)
    assert keys.kvs[0].key == f"{etcd_prefix}k0".encode()
    counted = await etcd_client.get(etcd_prefix, prefix=True, count_only=True)
    assert counted.count == 5 and counted.kvs == []


async def test_revision_filters(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    revs = await _fill(etcd_client, etcd_prefix)
    await etcd_client.put(etcd_prefix + "k0", "again")  # k0 mod revision moves past the others
    res = await etcd_client.get(etcd_prefix, prefix=True, min_mod_revision=revs[3])
    assert {kv.key[-2:] for kv in res} == {b"k3", b"k4", b"k0"}
    res = await etcd_client.get(etcd_prefix, prefix=True, max_mod_revision=revs[1])
    assert {kv.key[-2:] for kv in res} == {b"k1"}
    res = await etcd_client.get(etcd_prefix, prefix=True, min_create_revision=revs[3])
    assert {kv.key[-2:] for kv in res} == {b"k3", b"k4"}
    res = await etcd_client.get(etcd_prefix, prefix=True, max_create_revision=revs[1])
    assert {kv.key[-2:] for kv in res} == {b"k0", b"k1"}


async def test_put_prev_kv_ignore_value_ignore_lease(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    key = etcd_prefix + "k"
    first = await etcd_client.put(key, "one", prev_kv=True)
    assert first.prev_kv is None
    second = await etcd_client.put(key, "two", prev_kv=True)
    assert second.prev_kv is not None and second.prev_kv.value == b"one"
    # ignore_value keeps the value, bumps the version.
    await etcd_client.put(key, b"", ignore_value=True)
    kv = (await etcd_client.get(key)).kvs[0]
    assert kv.value == b"two" and kv.version == 3
    # ignore_lease keeps the lease (here: none) and changes the value.
    await etcd_client.put(key, "three", ignore_lease=True)
    assert (await etcd_client.get(key)).kvs[0].value == b"three"
    with pytest.raises(aetcd.KeyNotFoundError) as info:
        await etcd_client.put(etcd_prefix + "missing", b"", ignore_value=True)
    assert info.value.message == "etcdserver: key not found"


async def test_put_with_lease_id(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    # Lease API proper comes with the Lease facade; the raw id is enough here.
    from aetcd._pb import rpc_pb2

    t = etcd_client._t
    grant = await t.unary(t.lease.LeaseGrant, rpc_pb2.LeaseGrantRequest(TTL=30), None, write=True)
    await etcd_client.put(etcd_prefix + "leased", "v", lease=grant.ID)
    kv = (await etcd_client.get(etcd_prefix + "leased")).kvs[0]
    assert kv.lease == grant.ID
    with pytest.raises(aetcd.LeaseProvidedError):
        await etcd_client.put(etcd_prefix + "leased", "v", lease=grant.ID, ignore_lease=True)
    with pytest.raises(aetcd.LeaseNotFoundError) as info:
        await etcd_client.put(etcd_prefix + "x", "v", lease=0x7FFF_0000_1234)
    assert info.value.message == "etcdserver: requested lease not found"
    await t.unary(t.lease.LeaseRevoke, rpc_pb2.LeaseRevokeRequest(ID=grant.ID), None, write=True)


async def test_delete_variants(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await _fill(etcd_client, etcd_prefix, 6)
    one = await etcd_client.delete(etcd_prefix + "k0")
    assert one.deleted == 1 and one.prev_kvs == []
    none = await etcd_client.delete(etcd_prefix + "k0")
    assert none.deleted == 0
    rng = await etcd_client.delete(etcd_prefix + "k1", range_end=etcd_prefix + "k3", prev_kv=True)
    assert rng.deleted == 2
    assert [kv.value for kv in rng.prev_kvs] == [b"v1", b"v2"]
    frm = await etcd_client.delete(etcd_prefix + "k5", from_key=True, prev_kv=True)
    # from_key reaches past our prefix; only count what was ours.
    assert any(kv.key == f"{etcd_prefix}k5".encode() for kv in frm.prev_kvs)
    rest = await etcd_client.delete(etcd_prefix, prefix=True)
    assert rest.deleted == 2
    assert (await etcd_client.get(etcd_prefix, prefix=True)).count == 0


async def test_prefix_with_0xff_bytes(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    base = etcd_prefix.encode() + b"\xff"
    await etcd_client.put(base + b"\xff", "a")
    await etcd_client.put(base + b"\xff\x00", "b")
    await etcd_client.put(base, "c")
    res = await etcd_client.get(base, prefix=True)
    assert sorted(kv.value for kv in res) == [b"a", b"b", b"c"]


async def test_compact_then_old_revision_fails(
    etcd_server_factory: object, etcd_prefix: str
) -> None:
    # Compaction is global: use a private server so other tests keep their history.
    server = await etcd_server_factory()  # type: ignore[operator]
    async with aetcd.Client(server.endpoint) as client:
        first = await client.put("k", "1")
        second = await client.put("k", "2")
        res = await client.compact(second.header.revision, physical=True)
        assert res.header.revision >= second.header.revision
        with pytest.raises(aetcd.CompactedError) as info:
            await client.get("k", revision=first.header.revision)
        assert info.value.message == "etcdserver: mvcc: required revision has been compacted"
        assert info.value.code is not None and info.value.code.name == "OUT_OF_RANGE"
        assert not info.value.retryable
        with pytest.raises(aetcd.CompactedError):
            await client.compact(first.header.revision)
        assert (await client.get("k", revision=second.header.revision)).kvs[0].value == b"2"
        with pytest.raises(aetcd.FutureRevisionError):
            await client.compact(second.header.revision + 1000)


async def test_all_keys_with_empty_prefix(etcd_server_factory: object) -> None:
    server = await etcd_server_factory()  # type: ignore[operator]
    async with aetcd.Client(server.endpoint) as client:
        await client.put("a", "1")
        await client.put(b"\xff", "2")
        res = await client.get("", prefix=True)
        assert [kv.key for kv in res] == [b"a", b"\xff"]
        assert (await client.get(b"", from_key=True)).count == 2
        assert (await client.delete("", prefix=True)).deleted == 2
