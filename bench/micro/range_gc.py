# ruff: noqa: B018  (throwaway measurement code)
"""Micro-benchmark: the garbage collector's share of decoding a 1,000-key range.

Parses a 1,000-key RangeResponse, builds the result and reads every key and
value (what the range1000 workload does), with the collector on and off, in a
process whose heap holds what a client's does (aetcd, grpc.aio and asyncio
imported: ~28,000 tracked objects). Reports the best CPU time per op of
``ROUNDS`` and, for that round, the collections per op and the time spent in
them (``gc.callbacks``). Works on older trees (``PYTHONPATH=/old/tree:.``).
``python -m bench.micro.range_gc [ROUNDS]``.
"""

import asyncio  # noqa: F401 - the heap of a client process
import gc
import sys
import time

import grpc.aio  # noqa: F401

import aetcd  # noqa: F401
from aetcd._pb import rpc_pb2

try:  # the wire layer (aetcd._wire) builds the views
    from aetcd._wire.decode import get_view
except ImportError:  # older tree: the builders were in aetcd.types
    from aetcd.types import _get_view as get_view

resp = rpc_pb2.RangeResponse(count=1000)
resp.header.revision = 12345
for i in range(1000):
    resp.kvs.add(
        key=b"bench/range/k%04d" % i,
        value=b"v" * 32,
        create_revision=1000 + i,
        mod_revision=2000 + i,
        version=1,
    )
data = resp.SerializeToString()
parse = rpc_pb2.RangeResponse.FromString

_stats = {"n": [0, 0, 0], "t": 0.0}
_t0 = [0.0]


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _t0[0] = time.perf_counter()
    else:
        _stats["n"][info["generation"]] += 1
        _stats["t"] += time.perf_counter() - _t0[0]


def floor() -> None:
    for p in parse(data).kvs:
        p.key
        p.value


def aetcd_views() -> None:
    for kv in get_view(parse(data)).kvs:
        kv.key
        kv.value


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    gc.callbacks.append(_callback)
    n = 100
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        for fn in (floor, aetcd_views):
            best, best_stats = float("inf"), ([0, 0, 0], 0.0)
            for _ in range(rounds):
                _stats["n"], _stats["t"] = [0, 0, 0], 0.0
                t0 = time.process_time()
                for _ in range(n):
                    fn()
                t = (time.process_time() - t0) / n
                if t < best:
                    best, best_stats = t, (list(_stats["n"]), _stats["t"])
            counts, gc_time = best_stats
            print(
                f"{best * 1e6:7.1f} us/op  gc {'on ' if enabled else 'off'}  {fn.__name__:12}"
                f"  collections/op g0 {counts[0] / n:.2f} g1 {counts[1] / n:.2f}"
                f" g2 {counts[2] / n:.3f}  in gc {gc_time / n * 1e6:6.1f} us/op"
            )
    gc.enable()
    print("tracked objects:", len(gc.get_objects()))


if __name__ == "__main__":
    main()
