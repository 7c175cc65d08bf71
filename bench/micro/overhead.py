# ruff: noqa: B023, E741  (throwaway measurement code)
"""aetcd's Python-layer cost per call, with the RPC replaced by an instant fake."""

import asyncio
import sys
import time

import aetcd
from aetcd._pb import kv_pb2, rpc_pb2

N = 20000


async def timeit(fn, n=N, reps=7):
    best = 1e9
    for _ in range(reps):
        t0 = time.process_time()
        for _ in range(n):
            await fn()
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


def stime(fn, n=N, reps=7):
    best = 1e9
    for _ in range(reps):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


async def main(endpoint):
    hdr = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
    put_resp = rpc_pb2.PutResponse(header=hdr)
    range_resp = rpc_pb2.RangeResponse(
        header=hdr,
        count=1,
        kvs=[
            kv_pb2.KeyValue(
                key=b"bench/k", value=b"v" * 32, create_revision=1, mod_revision=2, version=1
            )
        ],
    )
    txn_resp = rpc_pb2.TxnResponse(
        header=hdr,
        succeeded=True,
        responses=[rpc_pb2.ResponseOp(response_put=rpc_pb2.PutResponse(header=hdr))],
    )

    async def fake_put(req, timeout=None, metadata=None, wait_for_ready=None):
        return put_resp

    async def fake_range(req, timeout=None, metadata=None, wait_for_ready=None):
        return range_resp

    async def fake_txn(req, timeout=None, metadata=None, wait_for_ready=None):
        return txn_resp

    out = {}
    for label, kw in (("default", {}), ("nc", {"coalesce_reads": False})):
        try:
            c = aetcd.Client(endpoint, **kw)
        except TypeError:
            continue
        await c.connect()
        t = c._t
        members = getattr(t, "members", None)
        if members:
            for m in members:
                m._callables[t.kv.Put.path] = fake_put
                m._callables[t.kv.Range.path] = fake_range
                m._callables[t.kv.Txn.path] = fake_txn
        else:  # older transport: stubs are attributes
            t.kv.Put, t.kv.Range, t.kv.Txn = fake_put, fake_range, fake_txn
        out[f"aetcd.put [{label}]"] = await timeit(lambda: c.put(b"bench/k", b"v" * 32))
        out[f"aetcd.get [{label}]"] = await timeit(lambda: c.get(b"bench/k"))
        C, O = aetcd.Compare, aetcd.Op
        out[f"aetcd.txn CAS [{label}]"] = await timeit(
            lambda: c.txn([C.value(b"bench/k") == b"1"], [O.put(b"bench/k", b"2")])
        )
        if label == "default" and members:
            m = members[0]
            req = rpc_pb2.RangeRequest(key=b"bench/k")
            out["  Transport._metadata_for(RangeRequest)"] = stime(lambda: t._metadata_for(req))
            out["  Member.state() (channel.get_state)"] = stime(lambda: m.state())
            out["  Transport.pick()"] = stime(lambda: t.pick())
            if hasattr(t, "_ready_member"):  # older transport
                out["  await Transport._ready_member()"] = await timeit(
                    lambda: t._ready_member(None, [], write=False)
                )
        try:  # the wire layer (aetcd._wire) builds the views
            from aetcd._wire.decode import get_view, put_view
        except ImportError:  # older tree: the builders were in aetcd.types
            from aetcd.types import _get_view as get_view
            from aetcd.types import _put_view as put_view

        out["  get_view (1 key)"] = stime(lambda: get_view(range_resp))
        out["  get_view (1 key) + .kvs[0].value"] = stime(
            lambda: get_view(range_resp).kvs[0].value
        )
        out["  put_view"] = stime(lambda: put_view(put_resp))
        out["  put_view + .header.revision"] = stime(
            lambda: put_view(put_resp).header.revision
        )
        try:
            from aetcd.ops import _put_fields

            out["  _put_fields() + PutRequest(**fields)"] = stime(
                lambda: rpc_pb2.PutRequest(
                    **_put_fields(b"bench/k", b"v" * 32, None, False, False, False)
                )
            )
        except ImportError:  # older tree
            from aetcd.ops import put_request

            out["  put_request()"] = stime(
                lambda: put_request(b"bench/k", b"v" * 32, None, False, False, False)
            )
        await c.close()

    # the floor's equivalent
    async def floor_put():
        r = await fake_put(
            rpc_pb2.PutRequest(key=b"bench/k", value=b"v" * 32),
            timeout=5.0,
            metadata=None,
            wait_for_ready=True,
        )
        return r.header.revision

    async def floor_get():
        r = await fake_range(
            rpc_pb2.RangeRequest(key=b"bench/k"), timeout=5.0, metadata=None, wait_for_ready=True
        )
        return r.kvs[0].value

    async def floor_cas():
        pb = rpc_pb2
        req = pb.TxnRequest(
            compare=[
                pb.Compare(
                    key=b"bench/k",
                    target=pb.Compare.CompareTarget.VALUE,
                    result=pb.Compare.CompareResult.EQUAL,
                    value=b"1",
                )
            ],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=b"bench/k", value=b"2"))],
        )
        r = await fake_txn(req, timeout=5.0, metadata=None, wait_for_ready=True)
        return r.succeeded

    out["floor put"] = await timeit(floor_put)
    out["floor txn CAS (as bench/worker.py)"] = await timeit(floor_cas)
    out["floor get"] = await timeit(floor_get)
    for k, v in out.items():
        print(f"{v:7.2f} us  {k}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
