"""Micro-benchmark: the pieces of building and decoding a compare-and-swap txn.

Works on this tree and on older ones (``PYTHONPATH=/copy/of/old`` for a before
figure): pieces an old tree lacks are skipped.
"""

import time

from aetcd import ops
from aetcd._pb import rpc_pb2
from aetcd.ops import Compare, Op
from aetcd.types import TxnResult

try:  # the wire layer (aetcd._wire) builds the views
    from aetcd._wire.decode import txn_view
except ImportError:  # older tree
    txn_view = TxnResult._from_pb

N = 20000


def stime(fn, n=N, reps=7):
    best = 1e9
    for _ in range(reps):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


hdr = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
txn_resp = rpc_pb2.TxnResponse(
    header=hdr,
    succeeded=True,
    responses=[rpc_pb2.ResponseOp(response_put=rpc_pb2.PutResponse(header=hdr))],
)
k = b"bench/k"


def floor_req():
    # what bench/worker.py's floor does per call
    pb = rpc_pb2
    return pb.TxnRequest(
        compare=[
            pb.Compare(
                key=k,
                target=pb.Compare.CompareTarget.VALUE,
                result=pb.Compare.CompareResult.EQUAL,
                value=b"1",
            )
        ],
        success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=b"2"))],
    )


def floor_dicts():
    # the least: one protobuf call, sub-messages as dicts, int enums
    return rpc_pb2.TxnRequest(
        compare=[{"key": k, "target": 3, "result": 0, "value": b"1"}],
        success=[{"request_put": {"key": k, "value": b"2"}}],
    )


CASES = [
    ("floor: build TxnRequest (enum lookups, as bench/worker.py)", floor_req),
    ("floor: build TxnRequest from dicts", floor_dicts),
    ("Compare.value(k) == v", lambda: Compare.value(k) == b"1"),
    ("Op.put(k, v)", lambda: Op.put(k, b"2")),
    (
        "Op.txn([cmp], [op]) incl. the two above",
        lambda: Op.txn([Compare.value(k) == b"1"], [Op.put(k, b"2")]),
    ),
]

if hasattr(ops, "_txn_fields"):  # this tree: what KV.txn does before the RPC
    try:  # the wire layer builds and checks requests
        from aetcd._wire.requests import txn_request as _txn_request
    except ImportError:  # older tree: in kv.py
        from aetcd.kv import _txn_request

    class _Cfg:
        max_txn_ops = 128
        max_request_bytes = 1536 * 1024

    def build_now():
        fields, writes, levels = ops._txn_fields([Compare.value(k) == b"1"], [Op.put(k, b"2")], ())
        return _txn_request(_Cfg, fields, levels), writes

    CASES.append(("KV.txn request: compare + op + _txn_fields + build + checks", build_now))
    CASES.append(("TxnResult view (1 put) + .succeeded", lambda: txn_view(txn_resp).succeeded))
else:  # older tree: KV.txn built Op.txn, then walked it

    def build_before():
        req = Op.txn([Compare.value(k) == b"1"], [Op.put(k, b"2")])._request
        ops._check_txn_ops(req, 128)
        req.ByteSize()
        return req, ops.txn_has_writes(req)

    CASES.append(("KV.txn request: Op.txn + _check_txn_ops + ByteSize + has_writes", build_before))
    CASES.append(
        ("TxnResult._from_pb (1 put) + .succeeded", lambda: TxnResult._from_pb(txn_resp).succeeded)
    )
CASES.append(
    (
        "TxnResult view (1 put) + .responses[0].header.revision",
        lambda: txn_view(txn_resp).responses[0].header.revision,
    )
)

if __name__ == "__main__":
    for name, fn in CASES:
        print(f"{stime(fn):7.2f} us  {name}")
