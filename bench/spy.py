"""``scripts/bench --profile W1,W2``: where aetcd's client time goes, by py-spy.

Each workload is run for aetcd and for the floor; py-spy attaches when the
measured window starts (``--nonblocking``, 500 Hz) and records collapsed
stacks of the Python threads (samples of idle threads are left out, so samples
are CPU time of the event-loop thread, including C code it calls). A function's
share of samples times the run's CPU per operation estimates its cost in
microseconds per operation. Reports go to ``bench-results/profile-*.txt``.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any

from .report import FLOOR

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


def aggregate(path: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """(total samples, self samples per function, inclusive samples per function)."""
    total = 0
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    if not path.exists():
        return 0, own, incl
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return total, own, incl


def category(func: str) -> str:
    """Which layer a function (as shortened by :func:`_short`) belongs to."""
    if "(aetcd/" in func:
        return "aetcd"
    if "(bench/" in func:
        return "bench harness"
    if func.startswith("Thread.run") or "(threading.py" in func:
        return "grpc poller thread"
    if "(grpc/" in func:
        return "grpc (Python/Cython)"
    if "(asyncio/" in func or "(selectors.py" in func:
        return "asyncio"
    if func.startswith("make (<string>"):
        return "aetcd"  # the generated constructors of aetcd.types
    return "other"


def per_op(path: Path, res: dict[str, Any]) -> dict[str, float]:
    """Self time per function in microseconds per operation."""
    total, own, _ = aggregate(path)
    cpu = res.get("cpu_us_per_op", 0.0)
    return {f: cpu * n / total for f, n in own.items()} if total else {}


def compare(
    name: str,
    res: dict[str, Any],
    path: Path,
    floor_res: dict[str, Any],
    floor_path: Path,
    top: int = 20,
) -> str:
    """Where *name* spends more than the floor: by layer and by function."""
    mine, base = per_op(path, res), per_op(floor_path, floor_res)
    if not mine or not base:
        return ""
    lines = [f"-- {name} minus floor, by layer (us/op of self time)"]
    layers: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for f, v in mine.items():
        layers[category(f)][0] += v
    for f, v in base.items():
        layers[category(f)][1] += v
    for layer, (a, b) in sorted(layers.items(), key=lambda x: x[1][1] - x[1][0]):
        lines.append(f"  {a:8.1f} vs {b:8.1f}  ({a - b:+7.1f})  {layer}")
    lines.append(
        f"  {sum(mine.values()):8.1f} vs {sum(base.values()):8.1f}  "
        f"({sum(mine.values()) - sum(base.values()):+7.1f})  total CPU/op"
    )
    lines.append(f"-- {name} minus floor, by function (largest differences)")
    diff = {f: mine.get(f, 0.0) - base.get(f, 0.0) for f in set(mine) | set(base)}
    for f, d in sorted(diff.items(), key=lambda x: -abs(x[1]))[:top]:
        lines.append(
            f"  {d:+7.1f} us/op  ({mine.get(f, 0.0):6.1f} vs {base.get(f, 0.0):6.1f})  {f}"
        )
    return "\n".join(lines)


def render(name: str, res: dict[str, Any], path: Path, top: int = 30) -> str:
    total, own, incl = aggregate(path)
    cpu = res.get("cpu_us_per_op", 0.0)
    lines = [
        f"== {name}: {res.get('ops_per_s', 0):,.0f} ops/s, {cpu:.1f} us CPU/op, "
        f"{total} samples (Python threads: event loop + gRPC poller; idle excluded)",
    ]
    if not total:
        return "\n".join([*lines, "   (no samples: is py-spy allowed to attach?)"])

    def block(title: str, counter: collections.Counter[str], keep: Any) -> None:
        lines.append(f"-- {title}")
        shown = 0
        for func, n in counter.most_common():
            if not keep(func):
                continue
            lines.append(f"  {100 * n / total:5.1f}%  {cpu * n / total:6.1f} us/op  {func}")
            shown += 1
            if shown >= top:
                break

    block("self time (where the samples are)", own, lambda f: True)
    block(
        "inclusive time, aetcd and glue (which calls they are under)",
        incl,
        lambda f: "aetcd/" in f or "bench/" in f or "grpc" in f or "asyncio" in f,
    )
    return "\n".join(lines)


def profile_workloads(bench: Any, names: list[str]) -> int:
    from .__main__ import RESULTS, WORKLOADS

    RESULTS.mkdir(exist_ok=True)
    for workload in names:
        if workload not in WORKLOADS or WORKLOADS[workload][0] == "leases":
            print(f"profile: {workload} is not profiled")
            continue
        bench.populate(workload)
        texts = []
        impls = [FLOOR, "aetcd"]
        if WORKLOADS[workload][0] in ("get", "range"):
            impls.append("aetcd-nc")  # reads without coalescing: the per-call path
        done: dict[str, tuple[dict[str, Any], Path]] = {}
        for impl in impls:
            raw = RESULTS / f"profile-{workload}-{impl}.raw"
            raw.unlink(missing_ok=True)
            res = bench.run_one(impl, workload, 0, profile=raw)
            raw.with_suffix(".json").write_text(json.dumps(res))
            bench.compact()
            done[impl] = (res, raw)
            texts.append(render(f"{workload} {impl}", res, raw))
        for impl in impls[1:]:
            texts.append(compare(f"{workload} {impl}", *done[impl], *done[FLOOR]))
        out = RESULTS / f"profile-{workload}.txt"
        out.write_text("\n\n".join(texts) + "\n")
        print("\n\n".join(texts))
        print(f"\nprofile: wrote {out}\n")
    return 0
