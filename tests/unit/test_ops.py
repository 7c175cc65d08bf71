"""Op and Compare build the same wire messages however they are assembled.

Ops keep their request as protobuf constructor arguments (aetcd.ops) and the
wire layer builds a txn from them in one protobuf call (aetcd._wire.requests);
these check the messages against ones built field by field.
"""

from __future__ import annotations

from aetcd import Compare, Op
from aetcd._pb import rpc_pb2
from aetcd._wire.namespace import Namespace
from aetcd._wire.requests import compare, request, request_op

pb = rpc_pb2


def test_single_ops_build_their_requests() -> None:
    assert request(Op.put("k", "v", lease=7, prev_kv=True)) == pb.PutRequest(
        key=b"k", value=b"v", lease=7, prev_kv=True
    )
    assert request(Op.get("k", prefix=True, limit=3, serializable=True)) == pb.RangeRequest(
        key=b"k", range_end=b"l", limit=3, serializable=True
    )
    assert request(Op.delete("a", range_end="c")) == pb.DeleteRangeRequest(key=b"a", range_end=b"c")
    assert request_op(Op.put("k")) == pb.RequestOp(request_put=pb.PutRequest(key=b"k"))


def test_txn_request_matches_one_built_by_hand() -> None:
    op = Op.txn(
        [Compare.value("k") == "v", Compare.version("p", prefix=True) > 2],
        [Op.put("k", "w"), Op.txn([Compare.lease("k") != 5], [Op.get("k")])],
        [Op.delete("k", prev_kv=True)],
    )
    expected = pb.TxnRequest(
        compare=[
            pb.Compare(key=b"k", target=pb.Compare.VALUE, result=pb.Compare.EQUAL, value=b"v"),
            pb.Compare(
                key=b"p",
                range_end=b"q",
                target=pb.Compare.VERSION,
                result=pb.Compare.GREATER,
                version=2,
            ),
        ],
        success=[
            pb.RequestOp(request_put=pb.PutRequest(key=b"k", value=b"w")),
            pb.RequestOp(
                request_txn=pb.TxnRequest(
                    compare=[
                        pb.Compare(
                            key=b"k",
                            target=pb.Compare.LEASE,
                            result=pb.Compare.NOT_EQUAL,
                            lease=5,
                        )
                    ],
                    success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"k"))],
                )
            ),
        ],
        failure=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=b"k", prev_kv=True))],
    )
    assert request(op) == expected
    assert compare(Compare.mod_revision("k") < 9) == pb.Compare(
        key=b"k", target=pb.Compare.MOD, result=pb.Compare.LESS, mod_revision=9
    )
    # levels for max_txn_ops: 2 at the top, then 1 in the nested txn
    assert op._levels == 3 and op.is_write


def test_namespaced_copies_every_key_and_leaves_the_op_alone() -> None:
    op = Op.txn(
        [Compare.version("", prefix=True) > 0],
        [Op.get("a", from_key=True), Op.txn([], [Op.put("b", "1"), Op.delete("c", prefix=True)])],
    )
    before = request(op)
    ns = Namespace(b"ns/").op(op)
    assert request(op) == before
    req = request(ns)
    assert (req.compare[0].key, req.compare[0].range_end) == (b"ns/", b"ns0")
    assert (req.success[0].request_range.key, req.success[0].request_range.range_end) == (
        b"ns/a",
        b"ns0",
    )
    inner = req.success[1].request_txn.success
    assert inner[0].request_put.key == b"ns/b"
    assert (inner[1].request_delete_range.key, inner[1].request_delete_range.range_end) == (
        b"ns/c",
        b"ns/d",
    )
