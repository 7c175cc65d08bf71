"""Python CPU per coalesced ``get`` (the get64 workload) with the RPCs faked out.

64 tasks (``[N]``) each run ``await client.get(key)`` back to back, as
bench/worker.py's get64 does, against fake Range and Txn callables that
serialize the request, answer after ``DELAY`` loop turns and deserialize a
response from bytes (as gRPC would). No etcd, no gRPC call: what is left is
aetcd's own cost per read (plus the harness loop and the fakes' protobuf work,
which every variant pays alike). Also prints how many reads went alone (one
RPC each) and how many in batches, since under real load a lone read costs a
whole RPC (~60 us).

    .venv/bin/python -m bench.micro.coalesce [TASKS] [DELAY]

Works on older trees too (``PYTHONPATH=/copy/of/old``). Internals it pokes:
``Transport.members``, ``Member.channel``, ``Member._callables``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time

import grpc

import aetcd
from aetcd._pb import kv_pb2, rpc_pb2

DURATION = 1.0
REPS = 5


class _FakeChannel:
    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return grpc.ChannelConnectivity.READY

    async def close(self, grace: float | None = None) -> None:
        return None


def _responses(nkeys: int) -> tuple[dict[bytes, bytes], list[bytes]]:
    hdr = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
    ranges: dict[bytes, bytes] = {}
    for i in range(nkeys):
        key = b"bench/get/k%04d" % i
        kv = kv_pb2.KeyValue(key=key, value=b"v" * 32, create_revision=2, mod_revision=2, version=1)
        ranges[key] = rpc_pb2.RangeResponse(header=hdr, count=1, kvs=[kv]).SerializeToString()
    txns = [b""]
    for n in range(1, 200):
        ops = []
        for i in range(n):
            key = b"bench/get/k%04d" % (i % nkeys)
            kv = kv_pb2.KeyValue(
                key=key, value=b"v" * 32, create_revision=2, mod_revision=2, version=1
            )
            rr = rpc_pb2.RangeResponse(header=rpc_pb2.ResponseHeader(revision=3), count=1, kvs=[kv])
            ops.append(rpc_pb2.ResponseOp(response_range=rr))
        txns.append(
            rpc_pb2.TxnResponse(header=hdr, succeeded=True, responses=ops).SerializeToString()
        )
    return ranges, txns


async def run(tasks: int, delay: int) -> None:
    nkeys = 64
    ranges, txns = _responses(nkeys)
    stats = {"range": 0, "txn": 0, "txn_ops": 0}
    from_range = rpc_pb2.RangeResponse.FromString
    from_txn = rpc_pb2.TxnResponse.FromString

    async def fake_range(req, timeout=None, metadata=None, wait_for_ready=None):  # type: ignore[no-untyped-def]
        req.SerializeToString()
        for _ in range(delay):
            await asyncio.sleep(0)
        stats["range"] += 1
        return from_range(ranges[req.key])

    async def fake_txn(req, timeout=None, metadata=None, wait_for_ready=None):  # type: ignore[no-untyped-def]
        req.SerializeToString()
        n = len(req.success)
        for _ in range(delay):
            await asyncio.sleep(0)
        stats["txn"] += 1
        stats["txn_ops"] += n
        return from_txn(txns[n])

    client = aetcd.Client("127.0.0.1:1")
    t = client._t
    await t.open(dial=False)
    for m in t.members:
        await m.channel.close(grace=None)
        m.channel = _FakeChannel()  # type: ignore[assignment]
        m._callables[t.kv.Range.path] = fake_range
        m._callables[t.kv.Txn.path] = fake_txn

    stop = False
    count = 0

    async def worker(w: int) -> None:
        nonlocal count
        i = 0
        perf = time.perf_counter_ns
        lat = []
        while not stop:
            t0 = perf()
            r = await client.get(b"bench/get/k%04d" % ((w + i) % nkeys))
            r.kvs[0].value  # noqa: B018
            lat.append(perf() - t0)
            count += 1
            i += 1

    gc_time = [0.0, 0.0, 0]

    def on_gc(phase: str, info: dict) -> None:  # type: ignore[type-arg]
        if phase == "start":
            gc_time[1] = time.process_time()
        else:
            gc_time[0] += time.process_time() - gc_time[1]
            gc_time[2] += 1

    gc.callbacks.append(on_gc)
    workers = [asyncio.ensure_future(worker(w)) for w in range(tasks)]
    await asyncio.sleep(0.2)
    results = []
    for _ in range(REPS):
        gc.collect()
        n0, s0 = count, dict(stats)
        g0, gn0 = gc_time[0], gc_time[2]
        c0 = time.process_time()
        await asyncio.sleep(DURATION)
        c1 = time.process_time()
        reads = count - n0
        rng = stats["range"] - s0["range"]
        txn = stats["txn"] - s0["txn"]
        gcs = (gc_time[0] - g0) / reads * 1e6, gc_time[2] - gn0
        results.append(
            ((c1 - c0) / reads * 1e6, reads, rng, txn, stats["txn_ops"] - s0["txn_ops"], gcs)
        )
    stop = True
    await asyncio.gather(*workers)
    await client.close()
    best = min(results)
    us, reads, rng, txn, txn_ops, (gc_us, gc_n) = best
    gc.callbacks.remove(on_gc)
    print(
        f"{us:6.2f} us/read (best of {REPS}; all: {' '.join(f'{r[0]:.2f}' for r in results)})"
        f"  lone Range RPCs {rng / reads:.1%} of reads, Txn RPCs {txn}, "
        f"{txn_ops / max(txn, 1):.1f} reads/Txn; cyclic GC {gc_us:.2f} us/read ({gc_n} runs)"
    )


if __name__ == "__main__":
    asyncio.run(
        run(
            int(sys.argv[1]) if len(sys.argv) > 1 else 64,
            int(sys.argv[2]) if len(sys.argv) > 2 else 2,
        )
    )
