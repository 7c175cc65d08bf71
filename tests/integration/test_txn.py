"""Txn: every compare target and relation, every op kind, nesting, limits."""

from __future__ import annotations

import pytest

import aetcd
from aetcd import Compare, Op


async def test_create_revision_lock(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    key = etcd_prefix + "lock"
    ok = await etcd_client.txn(
        compare=[Compare.create_revision(key) == 0],
        success=[Op.put(key, "me")],
        failure=[Op.get(key)],
    )
    assert ok.succeeded
    assert isinstance(ok.responses[0], aetcd.PutResult)
    busy = await etcd_client.txn(
        compare=[Compare.create_revision(key) == 0],
        success=[Op.put(key, "you")],
        failure=[Op.get(key)],
    )
    assert not busy.succeeded
    got = busy.responses[0]
    assert isinstance(got, aetcd.GetResult)
    assert got.kvs[0].value == b"me"
    assert got.kvs[0].create_revision == ok.header.revision


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda k: Compare.value(k) == "v2", True),
        (lambda k: Compare.value(k) == b"other", False),
        (lambda k: Compare.value(k) != "other", True),
        (lambda k: Compare.value(k) > "v1", True),
        (lambda k: Compare.value(k) < "v1", False),
        (lambda k: Compare.version(k) == 2, True),
        (lambda k: Compare.version(k) > 2, False),
        (lambda k: Compare.version(k) < 3, True),
        (lambda k: Compare.version(k) != 2, False),
        (lambda k: Compare.create_revision(k) > 0, True),
        (lambda k: Compare.create_revision(k) == 0, False),
        (lambda k: Compare.mod_revision(k) > 0, True),
        (lambda k: Compare.mod_revision(k) < 1, False),
        (lambda k: Compare.lease(k) == 0, True),
        (lambda k: Compare.lease(k) != 0, False),
    ],
)
async def test_compare_targets_and_relations(
    etcd_client: aetcd.Client, etcd_prefix: str, make: object, expected: bool
) -> None:
    key = etcd_prefix + "k"
    await etcd_client.put(key, "v1")
    await etcd_client.put(key, "v2")
    res = await etcd_client.txn(compare=[make(key)])  # type: ignore[operator]
    assert res.succeeded is expected
    assert res.responses == []


async def test_compare_mod_revision_exact(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    key = etcd_prefix + "k"
    put = await etcd_client.put(key, "v")
    res = await etcd_client.txn(
        compare=[Compare.mod_revision(key) == put.header.revision],
        success=[Op.put(key, "cas")],
    )
    assert res.succeeded
    stale = await etcd_client.txn(
        compare=[Compare.mod_revision(key) == put.header.revision],
        success=[Op.put(key, "stale")],
    )
    assert not stale.succeeded
    assert (await etcd_client.get(key)).kvs[0].value == b"cas"


async def test_range_compares(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    for i in range(3):
        await etcd_client.put(f"{etcd_prefix}r/{i}", "x")
    every = await etcd_client.txn(compare=[Compare.value(etcd_prefix + "r/", prefix=True) == "x"])
    assert every.succeeded
    await etcd_client.put(f"{etcd_prefix}r/2", "y")
    assert not (
        await etcd_client.txn(compare=[Compare.value(etcd_prefix + "r/", prefix=True) == "x"])
    ).succeeded
    part = await etcd_client.txn(
        compare=[Compare.value(etcd_prefix + "r/0", range_end=etcd_prefix + "r/2") == "x"]
    )
    assert part.succeeded


async def test_all_op_kinds_and_nested_txn(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    p = etcd_prefix
    await etcd_client.put(p + "old", "1")
    res = await etcd_client.txn(
        compare=[Compare.version(p + "old") == 1],
        success=[
            Op.put(p + "new", "2", prev_kv=True),
            Op.get(p, prefix=True, keys_only=True),
            Op.delete(p + "old", prev_kv=True),
            Op.txn(
                [Compare.version(p + "never") == 0],
                [Op.put(p + "inner", "3"), Op.get(p + "new")],
                [Op.get(p + "never")],
            ),
        ],
    )
    assert res.succeeded
    put, got, deleted, inner = res.responses
    assert isinstance(put, aetcd.PutResult) and put.prev_kv is None
    assert isinstance(got, aetcd.GetResult)
    # A txn reads its own writes in order: "new" is visible, values are left out.
    assert [kv.key for kv in got] == [(p + "new").encode(), (p + "old").encode()]
    assert isinstance(deleted, aetcd.DeleteResult) and deleted.deleted == 1
    assert deleted.prev_kvs[0].value == b"1"
    assert isinstance(inner, aetcd.TxnResult) and inner.succeeded
    inner_get = inner.responses[1]
    assert isinstance(inner_get, aetcd.GetResult) and inner_get.kvs[0].value == b"2"
    # All writes of a txn share one revision.
    assert put.header.revision == res.header.revision == inner.header.revision
    kvs = {kv.key: kv for kv in await etcd_client.get(p, prefix=True)}
    assert kvs[(p + "inner").encode()].mod_revision == kvs[(p + "new").encode()].mod_revision


async def test_failure_branch_of_nested(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    res = await etcd_client.txn(
        success=[Op.txn([Compare.version(etcd_prefix + "x") > 0], [], [Op.put(etcd_prefix + "x", "f")])]
    )
    assert res.succeeded  # no compares: success runs
    inner = res.responses[0]
    assert isinstance(inner, aetcd.TxnResult) and not inner.succeeded
    assert isinstance(inner.responses[0], aetcd.PutResult)


async def test_read_only_txn_is_not_a_write(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    assert not Op.txn([], [Op.get(etcd_prefix + "a")], [Op.txn([], [Op.get("b")])]).is_write
    assert Op.txn([], [Op.get("a")], [Op.txn([], [Op.delete("b")])]).is_write
    assert Op.put("a", "b").is_write and Op.delete("a").is_write and not Op.get("a").is_write


async def test_duplicate_key_is_typed(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    key = etcd_prefix + "dup"
    with pytest.raises(aetcd.DuplicateKeyError) as info:
        await etcd_client.txn(success=[Op.put(key, "1"), Op.put(key, "2")])
    assert info.value.message == "etcdserver: duplicate key given in txn request"
    assert info.value.code is not None and info.value.code.name == "INVALID_ARGUMENT"
    with pytest.raises(aetcd.DuplicateKeyError):
        await etcd_client.txn(success=[Op.put(key, "1"), Op.delete(etcd_prefix, prefix=True)])


async def test_128_ops_pass_129_fail_locally(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    ops = [Op.put(f"{etcd_prefix}{i}", "v") for i in range(128)]
    assert (await etcd_client.txn(success=ops)).succeeded
    with pytest.raises(aetcd.TooManyOpsError) as info:
        await etcd_client.txn(success=[*ops, Op.put(etcd_prefix + "x", "v")])
    assert info.value.detail is not None  # raised before any I/O


async def test_too_many_ops_from_server_is_typed(etcd_server: object, etcd_prefix: str) -> None:
    # A client that believes the server allows more still gets the typed server error.
    async with aetcd.Client(etcd_server.endpoint, max_txn_ops=1000) as client:  # type: ignore[attr-defined]
        ops = [Op.get(f"{etcd_prefix}{i}") for i in range(129)]
        with pytest.raises(aetcd.TooManyOpsError) as info:
            await client.txn(success=ops)
        assert info.value.message == "etcdserver: too many operations in txn request"
        assert info.value.code is not None


async def test_request_too_large(etcd_server: object, etcd_prefix: str) -> None:
    big = b"x" * (1536 * 1024 + 1)
    async with aetcd.Client(etcd_server.endpoint) as client:  # type: ignore[attr-defined]
        with pytest.raises(aetcd.RequestTooLargeError) as info:
            await client.put(etcd_prefix + "big", big)
        assert info.value.detail is not None  # raised before any I/O
        with pytest.raises(aetcd.RequestTooLargeError):
            await client.txn(success=[Op.put(etcd_prefix + "big", big)])
    # With the local check relaxed to the send limit, the server's own check answers.
    async with aetcd.Client(
        etcd_server.endpoint,  # type: ignore[attr-defined]
        max_request_bytes=2 * 1024 * 1024,
    ) as client:
        with pytest.raises(aetcd.RequestTooLargeError) as info:
            await client.put(etcd_prefix + "big", big)
        assert info.value.message == "etcdserver: request is too large"
        assert info.value.detail is None  # the server's answer


async def test_max_txn_ops_counts_each_nested_path(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    # etcd's rule: each level gets what its parents left of max_txn_ops (128);
    # siblings do not add up, a path down the nesting does.
    def gets(n: int, tag: str) -> list[Op]:
        return [Op.get(f"{etcd_prefix}{tag}{i}") for i in range(n)]

    def nest(a: int, b: int, c: int) -> Op:
        return Op.txn([], [*gets(a, "a"), Op.txn([], [*gets(b, "b"), Op.txn([], gets(c, "c"))])])

    deep_ok = nest(49, 48, 28)
    assert (await etcd_client.txn([], [deep_ok])).succeeded  # 1 + (49 + 1) + (48 + 1) + 28 = 128
    wide_ok = [Op.txn([], gets(28, f"w{j}")) for j in range(3)]
    assert (await etcd_client.txn([], [*gets(97, "x"), *wide_ok])).succeeded  # 100 + 28 per path
    deep_bad = nest(49, 48, 29)
    with pytest.raises(aetcd.TooManyOpsError) as info:
        await etcd_client.txn([], [deep_bad])
    assert info.value.detail is not None  # raised before any I/O
    compares = [Compare.version(f"{etcd_prefix}c{i}") == 0 for i in range(100)]
    with pytest.raises(aetcd.TooManyOpsError):  # compares count at their level too
        await etcd_client.txn(compares, [Op.txn(compares[:29])])
    assert (await etcd_client.txn(compares, [Op.txn(compares[:28])])).succeeded
