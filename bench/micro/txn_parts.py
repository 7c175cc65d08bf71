import time

from aetcd._pb import rpc_pb2
from aetcd.ops import Compare, Op, check_txn_ops, txn_has_writes
from aetcd.types import TxnResult

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


req = Op.txn([Compare.value(k) == b"1"], [Op.put(k, b"2")]).request
for name, fn in [
    ("floor: build TxnRequest", floor_req),
    ("Compare.value(k) == v", lambda: Compare.value(k) == b"1"),
    ("Op.put(k, v)", lambda: Op.put(k, b"2")),
    (
        "Op.txn([cmp], [op]) incl. the two above",
        lambda: Op.txn([Compare.value(k) == b"1"], [Op.put(k, b"2")]),
    ),
    ("check_txn_ops(req, 128)", lambda: check_txn_ops(req, 128)),
    ("req.ByteSize()", lambda: req.ByteSize()),
    ("txn_has_writes(req)", lambda: txn_has_writes(req)),
    ("TxnResult.from_pb (1 put)", lambda: TxnResult.from_pb(txn_resp)),
]:
    print(f"{stime(fn):7.2f} us  {name}")
