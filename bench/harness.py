"""Closed-loop drivers and statistics shared by every benchmark worker.

Standard library only: the peer clients' virtual environments import this file
too (``bench/worker.py`` puts ``bench/`` on ``sys.path``), so nothing here may
import aetcd, grpc or protobuf.

Client CPU is ``time.process_time()`` of the worker process (every thread,
gRPC's C-core threads included), taken over the measured window only: imports,
connecting, setup and warm-up are left out, and etcd runs in another process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Printed by a worker on stdout; the orchestrator reads the lines it cares about.
READY = "BENCH-READY"  # watch: the watch is confirmed, start the writer
MEASURING = "BENCH-MEASURING"  # the measured window starts now (profilers attach)
RESULT = "BENCH-RESULT "  # followed by one JSON object


def say(line: str) -> None:
    print(line, flush=True)


def emit(result: dict[str, Any]) -> None:
    say(RESULT + json.dumps(result))


def percentile(sorted_values: list[int] | list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an already sorted list; 0 when empty."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def summary(
    ops: int, elapsed: float, cpu: float, latencies_ns: list[int], **extra: Any
) -> dict[str, Any]:
    """The figures every workload reports (latencies in microseconds)."""
    latencies_ns.sort()
    return {
        "ops": ops,
        "elapsed_s": elapsed,
        "ops_per_s": ops / elapsed if elapsed > 0 else 0.0,
        "p50_us": percentile(latencies_ns, 0.50) / 1000,
        "p99_us": percentile(latencies_ns, 0.99) / 1000,
        "cpu_s": cpu,
        "cpu_us_per_op": cpu / ops * 1e6 if ops else 0.0,
        "cpu_pct_core": cpu / elapsed * 100 if elapsed > 0 else 0.0,
        **extra,
    }


AsyncOp = Callable[[int, int], Awaitable[Any]]


async def closed_loop(
    op: AsyncOp, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """Run ``op(worker, i)`` back to back in *concurrency* tasks.

    An operation counts when it completes inside the measured window (after
    *warmup* seconds, for *duration* seconds); its latency is recorded then.
    """
    perf = time.perf_counter_ns
    state = {"stop": False, "measuring": False}
    latencies: list[int] = []
    record = latencies.append

    async def worker(w: int) -> None:
        i = 0
        while not state["stop"]:
            t0 = perf()
            await op(w, i)
            t1 = perf()
            if state["measuring"]:
                record(t1 - t0)
            i += 1

    tasks = [asyncio.ensure_future(worker(w)) for w in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        say(MEASURING)
        state["measuring"] = True
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(duration)
        state["measuring"] = False
        c1, w1 = time.process_time(), time.perf_counter()
        state["stop"] = True
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return summary(len(latencies), w1 - w0, c1 - c0, latencies, concurrency=concurrency)


def threaded_loop(
    op: Callable[[int, int], Any], concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    """:func:`closed_loop` for synchronous clients: one thread per operation in flight."""
    perf = time.perf_counter_ns
    state = {"stop": False, "measuring": False}
    latencies: list[int] = []
    record = latencies.append

    def worker(w: int) -> None:
        i = 0
        while not state["stop"]:
            t0 = perf()
            op(w, i)
            t1 = perf()
            if state["measuring"]:
                record(t1 - t0)
            i += 1

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    say(MEASURING)
    state["measuring"] = True
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(duration)
    state["measuring"] = False
    c1, w1 = time.process_time(), time.perf_counter()
    state["stop"] = True
    for t in threads:
        t.join()
    return summary(len(latencies), w1 - w0, c1 - c0, latencies, concurrency=concurrency)


class WatchSink:
    """Counts watch events and the delay of each behind its writer.

    The writer (another process) puts ``str(time.monotonic_ns())`` as each
    value just before sending it; CLOCK_MONOTONIC is system-wide on Linux, so
    receive time minus that value is the delay behind the writer.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.delays: list[int] = []
        self.first = 0.0
        self.last = 0.0
        self.cpu_start = time.process_time()
        self.cpu_end = 0.0
        self.done = False

    def start(self) -> None:
        """Call when the watch is confirmed (just before announcing READY)."""
        self.cpu_start = time.process_time()
        say(READY)

    def __call__(self, value: bytes) -> bool:
        """Record one event; True once every expected event arrived."""
        now = time.monotonic_ns()
        delays = self.delays
        if not delays:
            self.first = time.perf_counter()
        delays.append(now - int(value))
        if len(delays) >= self.expected:
            self.last = time.perf_counter()
            self.cpu_end = time.process_time()
            self.done = True
            return True
        return False

    def result(self) -> dict[str, Any]:
        n = len(self.delays)
        if not self.done:  # timed out: report what arrived
            self.last = time.perf_counter()
            self.cpu_end = time.process_time()
        elapsed = self.last - self.first if n > 1 else 0.0
        res = summary(n, elapsed, self.cpu_end - self.cpu_start, self.delays)
        res["complete"] = self.done
        res["expected"] = self.expected
        return res


def fail(message: str) -> None:
    print(f"bench worker: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
