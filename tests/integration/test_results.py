"""Results are frozen values: views of the response that behave like dataclasses.

``KeyValue``, ``ResponseHeader`` and the KV results read their fields from the
protobuf response on access (aetcd.types); these tests hold them to the value
semantics users rely on, on results from a real etcd.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
from typing import Any

import pytest
from google.protobuf.message import Message

import aetcd
from aetcd import Compare, KeyValue, Op, ResponseHeader
from aetcd._wire.requests import request_op


def reaches_protobuf(obj: object, depth: int = 6) -> bool:
    """Whether a protobuf message is reachable from *obj* (classes not followed)."""
    seen: set[int] = set()
    todo = [(obj, 0)]
    while todo:
        item, level = todo.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        if isinstance(item, Message):
            return True
        if level < depth:
            todo.extend((ref, level + 1) for ref in gc.get_referents(item))
    return False


async def test_key_values_equal_hand_built_ones(etcd_client: Any, etcd_prefix: str) -> None:
    key = (etcd_prefix + "k").encode()
    put = await etcd_client.put(key, b"v")
    kv = (await etcd_client.get(key)).kvs[0]
    rev = put.header.revision
    hand = KeyValue(key=key, value=b"v", create_revision=rev, mod_revision=rev, version=1, lease=0)
    assert kv == hand and hand == kv
    assert KeyValue(key, b"v", rev, rev, 1, 0) == kv
    assert hash(kv) == hash(hand) and len({kv, hand}) == 1
    assert kv != dataclasses.replace(hand, version=2)
    assert kv != (key, b"v", rev, rev, 1, 0)  # a value, not a tuple
    assert repr(kv) == (
        f"KeyValue(key={key!r}, value=b'v', create_revision={rev}, "
        f"mod_revision={rev}, version=1, lease=0)"
    )
    assert (kv.key, kv.value, kv.version, kv.lease) == (key, b"v", 1, 0)
    assert type(kv.key) is bytes and type(kv.create_revision) is int


async def test_results_are_frozen(etcd_client: Any, etcd_prefix: str) -> None:
    put = await etcd_client.put(etcd_prefix + "k", "v")
    got = await etcd_client.get(etcd_prefix + "k")
    deleted = await etcd_client.delete(etcd_prefix + "k", prev_kv=True)
    txn = await etcd_client.txn([], [Op.get(etcd_prefix + "k")])
    for value, field in [
        (got.kvs[0], "key"),
        (got.kvs[0], "value"),
        (got.header, "revision"),
        (got, "kvs"),
        (got, "count"),
        (got, "header"),
        (put, "prev_kv"),
        (deleted, "deleted"),
        (txn, "succeeded"),
        (txn, "responses"),
        (got.kvs[0], "_pb"),  # the message behind a view cannot be swapped either
        (got.kvs[0], "new_attribute"),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)
        with pytest.raises(AttributeError):
            delattr(value, field)
    assert got.kvs[0].value == b"v" and got.count == 1


async def test_results_behave_as_dataclasses(etcd_client: Any, etcd_prefix: str) -> None:
    await etcd_client.put(etcd_prefix + "a", "1")
    await etcd_client.put(etcd_prefix + "b", "2")
    got = await etcd_client.get(etcd_prefix, prefix=True)
    assert dataclasses.is_dataclass(got) and dataclasses.is_dataclass(got.kvs[0])
    assert [f.name for f in dataclasses.fields(got)] == ["header", "kvs", "count", "more"]
    assert [f.name for f in dataclasses.fields(aetcd.KeyValue)] == [
        "key",
        "value",
        "create_revision",
        "mod_revision",
        "version",
        "lease",
    ]
    as_dict = dataclasses.asdict(got)
    assert as_dict["count"] == 2 and as_dict["kvs"][1]["value"] == b"2"
    assert as_dict["header"]["revision"] == got.header.revision
    renamed = dataclasses.replace(got.kvs[0], key=b"other")
    assert renamed.key == b"other" and renamed.value == b"1"
    assert dataclasses.replace(got, kvs=[]).count == 2
    # the result API of API.md
    assert len(got) == 2 and [kv.value for kv in got] == [b"1", b"2"]
    assert type(got.kvs) is list and got.first == got.kvs[0]
    assert got.more is False and got.header.raft_term >= 1
    assert got.header is got.header and got.header == dataclasses.replace(got.header)
    with pytest.raises(TypeError):
        hash(got)  # holds a list, as before
    match got.kvs[0]:
        case KeyValue(key=key, value=b"1"):
            assert key == (etcd_prefix + "a").encode()
        case _:
            pytest.fail("KeyValue does not match a class pattern")


async def test_hand_built_results(etcd_client: Any) -> None:
    header = ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
    kv = KeyValue(b"k", b"v", 1, 2, 1, 0)
    got = aetcd.GetResult(header=header, kvs=[kv], count=5, more=True)
    assert (got.header, got.kvs, got.count, got.more, got.first) == (header, [kv], 5, True, kv)
    assert got == aetcd.GetResult(ResponseHeader(1, 2, 3, 4), [KeyValue(b"k", b"v", 1, 2, 1, 0)], 5, True)
    assert aetcd.PutResult(header, None).prev_kv is None
    assert aetcd.DeleteResult(header, 1, [kv]).deleted == 1
    txn = aetcd.TxnResult(header, False, [got])
    assert not txn.succeeded and txn.responses == [got]
    assert repr(header) == "ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)"
    # built by hand, fields are kept as given (as a dataclass would)
    assert KeyValue("k", "v", 1, 1, 1, None).lease is None  # type: ignore[arg-type]


async def test_results_pickle_and_copy_without_the_message(etcd_client: Any, etcd_prefix: str) -> None:
    await etcd_client.put(etcd_prefix + "a", "1")
    await etcd_client.put(etcd_prefix + "b", "2")
    got = await etcd_client.get(etcd_prefix, prefix=True)
    put = await etcd_client.put(etcd_prefix + "a", "3", prev_kv=True)
    txn = await etcd_client.txn(
        [Compare.value(etcd_prefix + "a") == "3"],
        [Op.get(etcd_prefix, prefix=True), Op.txn([], [Op.delete(etcd_prefix + "b", prev_kv=True)])],
    )
    for result in (got, got.kvs[0], got.header, put, txn):
        assert reaches_protobuf(result)  # a view
        for clone in (pickle.loads(pickle.dumps(result)), copy.copy(result), copy.deepcopy(result)):
            assert clone == result and type(clone) is type(result)
            assert repr(clone) == repr(result)
        assert not reaches_protobuf(pickle.loads(pickle.dumps(result)))
        assert not reaches_protobuf(copy.deepcopy(result))
    # copy.copy(kv) is the documented way to keep a key without its response
    kept = copy.copy(got.kvs[1])
    assert kept == got.kvs[1] and not reaches_protobuf(kept)
    assert hash(kept) == hash(got.kvs[1])


async def test_txn_results_of_nested_txns(etcd_client: Any, etcd_prefix: str) -> None:
    p = etcd_prefix
    await etcd_client.put(p + "x", "1")
    res = await etcd_client.txn(
        [Compare.value(p + "x") == "1"],
        [
            Op.put(p + "y", "2", prev_kv=True),
            Op.txn(
                [Compare.version(p + "y") == 0],  # compares see the store as the txn starts
                [Op.get(p + "y"), Op.txn([Compare.version(p + "nope") > 0], [], [Op.get(p + "x")])],
            ),
            Op.delete(p + "x", prev_kv=True),
        ],
    )
    assert res.succeeded and len(res.responses) == 3
    put, inner, deleted = res.responses
    assert isinstance(put, aetcd.PutResult) and put.prev_kv is None
    assert put.header.revision == res.header.revision
    assert isinstance(inner, aetcd.TxnResult) and inner.succeeded
    assert inner.header == res.header  # etcd leaves it empty: the parent's
    got, innermost = inner.responses
    assert isinstance(got, aetcd.GetResult) and got.kvs[0].value == b"2"
    assert isinstance(innermost, aetcd.TxnResult) and not innermost.succeeded
    assert innermost.header == res.header
    assert isinstance(innermost.responses[0], aetcd.GetResult)
    assert innermost.responses[0].kvs[0].value == b"1"
    assert isinstance(deleted, aetcd.DeleteResult) and deleted.deleted == 1
    assert deleted.prev_kvs[0].key == (p + "x").encode()
    assert res.responses is res.responses  # decoded once
    assert pickle.loads(pickle.dumps(res)) == res


async def test_namespaced_results(etcd_server: Any, etcd_prefix: str) -> None:
    ns = etcd_prefix + "ns/"
    async with aetcd.Client(etcd_server.endpoint, namespace=ns) as client:
        await client.put("a", "1")
        put = await client.put("a", "2", prev_kv=True)
        assert put.prev_kv == KeyValue(b"a", b"1", put.prev_kv.create_revision, put.prev_kv.mod_revision, 1, 0)  # type: ignore[union-attr]
        got = await client.get("a")
        assert got.kvs[0].key == b"a" and got.count == 1 and got.header.revision == put.header.revision
        res = await client.txn(
            [Compare.value("a") == "2"],
            [Op.txn([], [Op.get("a"), Op.put("b", "x", prev_kv=True)]), Op.delete("a", prev_kv=True)],
        )
        inner, deleted = res.responses
        assert isinstance(inner, aetcd.TxnResult) and inner.header == res.header
        assert isinstance(inner.responses[0], aetcd.GetResult)
        assert inner.responses[0].kvs[0].key == b"a"
        assert isinstance(deleted, aetcd.DeleteResult) and deleted.prev_kvs[0].key == b"a"
        assert pickle.loads(pickle.dumps(res)) == res
        via_do = await client.do(Op.get("b"))
        assert isinstance(via_do, aetcd.GetResult) and via_do.kvs[0].key == b"b"
        gone = await client.delete("", prefix=True, prev_kv=True)
        assert [kv.key for kv in gone.prev_kvs] == [b"b"]


async def test_ops_are_reusable_across_clients_and_namespaces(etcd_server: Any, etcd_prefix: str) -> None:
    op = Op.txn([Compare.version("k") == 0], [Op.put("k", "v")], [Op.get("k")])
    before = request_op(op)
    async with (
        aetcd.Client(etcd_server.endpoint, namespace=etcd_prefix + "one/") as one,
        aetcd.Client(etcd_server.endpoint, namespace=etcd_prefix + "two/") as two,
        aetcd.Client(etcd_server.endpoint) as raw,
    ):
        first = await one.do(op)
        second = await two.do(op)
        third = await one.do(op)
        assert isinstance(first, aetcd.TxnResult) and first.succeeded
        assert isinstance(second, aetcd.TxnResult) and second.succeeded
        assert isinstance(third, aetcd.TxnResult) and not third.succeeded
        assert third.responses[0].kvs[0].key == b"k"  # type: ignore[union-attr]
        assert (await raw.get(etcd_prefix, prefix=True)).count == 2
    assert request_op(op) == before  # namespacing copied, never changed the op
    assert op.is_write and not Op.txn([], [Op.get("k")], [Op.txn([], [Op.get("j")])]).is_write
    assert Op.txn([], [], [Op.txn([], [Op.delete("j")])]).is_write


async def test_config_mirror_keeps_no_response_alive(etcd_client: Any, etcd_prefix: str) -> None:
    from aetcd.recipes.config import ConfigMirror

    p = etcd_prefix + "cfg/"
    for i in range(20):
        await etcd_client.put(f"{p}k{i}", b"x" * 100)
    async with ConfigMirror(etcd_client, p) as cfg:  # read from one range response
        last = await etcd_client.put(p + "late", "y")  # and one from a watch event
        await cfg.wait_for(last.header.revision, timeout=5)
        assert len(cfg) == 21
        assert not reaches_protobuf(cfg._data) and not reaches_protobuf(cfg._raw)
