# ruff: noqa: E501, F841  (throwaway measurement code)
"""In-process A/B: bare grpc.aio Put/Range @64 with and without hasleader metadata."""

import asyncio
import statistics
import sys
import time

import grpc.aio

from aetcd._pb import rpc_pb2, rpc_pb2_grpc
from aetcd.config import ClientConfig


async def main(ep, kind):
    cfg = ClientConfig.build(ep)
    ch = grpc.aio.insecure_channel(ep, cfg.channel_options())
    kv = rpc_pb2_grpc.KVStub(ch)
    await ch.channel_ready()
    md_sets = {"none": None, "hasleader": (("hasleader", "true"),), "md_obj": grpc.aio.Metadata(("hasleader", "true"))}
    state = {"md": None, "n": 0, "stop": False}

    async def worker(w):
        while not state["stop"]:
            if kind == "put":
                r = await kv.Put(
                    rpc_pb2.PutRequest(key=b"bench/md/k%02d" % w, value=b"v" * 32),
                    timeout=5.0,
                    metadata=state["md"],
                    wait_for_ready=True,
                )
            else:
                r = await kv.Range(
                    rpc_pb2.RangeRequest(key=b"bench/get/k%04d" % w),
                    timeout=5.0,
                    metadata=state["md"],
                    wait_for_ready=True,
                )
            state["n"] += 1

    tasks = [asyncio.ensure_future(worker(w)) for w in range(64)]
    await asyncio.sleep(0.5)
    res = {k: [] for k in md_sets}
    for i in range(12):
        for name in list(md_sets) if i % 2 else list(reversed(list(md_sets))):
            state["md"] = md_sets[name]
            await asyncio.sleep(0.1)
            n0, c0, w0 = state["n"], time.process_time(), time.perf_counter()
            await asyncio.sleep(0.7)
            n1, c1, w1 = state["n"], time.process_time(), time.perf_counter()
            res[name].append(((c1 - c0) / (n1 - n0) * 1e6, (n1 - n0) / (w1 - w0)))
    state["stop"] = True
    await asyncio.gather(*tasks)
    for name, v in res.items():
        print(
            f"{kind} {name:10} CPU/op median {statistics.median(x[0] for x in v):6.1f} us  ops/s median {statistics.median(x[1] for x in v):8.0f}"
        )
    await ch.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
