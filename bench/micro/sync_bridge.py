"""The cost of aetcd.sync's hand-off alone: N threads calling ``Runner.run`` on
a coroutine that does no I/O, against the textbook hand-off
(``asyncio.run_coroutine_threadsafe(...).result()``) in the same run.

    .venv/bin/python -m bench.micro.sync_bridge [threads ...] [--reps R] [--duration S]
    .venv/bin/python -m bench.micro.sync_bridge 1 64 --alt path/to/_runner.py   # A/B a copy

``--alt`` loads another copy of ``aetcd/sync/_runner.py`` (for instance the
previous commit's, via ``git show HEAD~1:aetcd/sync/_runner.py > /tmp/r.py``) and
measures its ``Runner.run`` as ``alt``. Variants are interleaved, order
rotating; the figures are medians. ``sleep`` is a coroutine that waits 1 ms on
the loop, so that calls overlap as RPCs do.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from aetcd.sync import _runner


async def noop() -> int:
    return 1


async def sleep() -> int:
    await asyncio.sleep(0.001)
    return 1


def textbook(runner: _runner.Runner) -> Callable[[Any], Any]:
    loop = runner.loop
    assert loop is not None
    return lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result()


def load_alt(path: str) -> Callable[[_runner.Runner], Callable[[Any], Any]]:
    spec = importlib.util.spec_from_file_location("aetcd.sync._alt_runner", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run = mod.Runner.run
    return lambda runner: lambda coro: run(runner, coro)


def measure(call: Callable[[Any], Any], make: Callable[[], Any], threads: int, duration: float):
    stop = threading.Event()
    counts = [0] * threads

    def worker(w: int) -> None:
        n = 0
        while not stop.is_set():
            call(make())
            n += 1
        counts[w] = n

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    time.sleep(0.2)
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(duration)
    stop.set()
    for t in ts:
        t.join()
    c1, w1 = time.process_time(), time.perf_counter()
    ops = sum(counts)
    return ops / (w1 - w0), (c1 - c0) / ops * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("threads", nargs="*", type=int, default=[1, 64])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--alt")
    a = p.parse_args()
    runner = _runner.Runner("bench")
    variants: dict[str, Callable[[Any], Any]] = {
        "aetcd": lambda coro: runner.run(coro),
        "textbook": textbook(runner),
    }
    if a.alt:
        variants["alt"] = load_alt(a.alt)(runner)
    print(f"load average {os.getloadavg()}")
    try:
        for coro_fn in (noop, sleep):
            for threads in a.threads:
                res: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
                names = list(variants)
                for rep in range(a.reps):
                    for name in names[rep % len(names) :] + names[: rep % len(names)]:
                        res[name].append(measure(variants[name], coro_fn, threads, a.duration))
                for name, rs in res.items():
                    ops = statistics.median(r[0] for r in rs)
                    cpu = statistics.median(r[1] for r in rs)
                    print(
                        f"{coro_fn.__name__:5} {threads:3} threads  {name:8} "
                        f"{ops:9,.0f} calls/s  {cpu:6.1f} us CPU/call"
                    )
    finally:
        runner.stop()


if __name__ == "__main__":
    main()
