"""Summaries of a benchmark run: medians, ratios to the floor, targets, table, PNG, Markdown."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

FLOOR = "floor"
PYTHON_PEERS = ("etcd3", "aetcd-peer", "etcd3aio", "etcetra")

# What each workload's numbers mean, for the table footnotes and BENCHMARKS.md.
UNITS = {
    "watch": "events/s; p50/p99 = delay behind the writer; CPU per event",
    "leases": "keep-alive replies/s; CPU per keep-alive; %core in the CPU column note",
}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """runs[workload][impl] = [run, ...] -> one row per (workload, impl).

    ``ratio`` is the median over repetitions of impl ops/s / floor ops/s of
    the same repetition (adjacent runs), ``cpu_ratio`` likewise for CPU per op
    (lower is better). Figures are medians over repetitions.
    """
    rows: list[dict[str, Any]] = []
    for workload, by_impl in runs.items():
        floor_runs = by_impl.get(FLOOR, [])
        for impl, rs in by_impl.items():
            good = [r for r in rs if "ops_per_s" in r and r.get("ops", 0) > 0]
            row: dict[str, Any] = {"workload": workload, "impl": impl, "reps": len(good)}
            if not good:
                reason = next((r.get("unsupported") or r.get("error") for r in rs), "no result")
                row["skipped"] = reason
                rows.append(row)
                continue
            for key in ("ops_per_s", "p50_us", "p99_us", "cpu_us_per_op", "cpu_pct_core"):
                row[key] = _median([r[key] for r in good])
            row["complete"] = all(r.get("complete", True) for r in good)
            ratios, cpu_ratios = [], []
            for r, f in zip(rs, floor_runs, strict=False):
                if r.get("ops") and f.get("ops"):
                    ratios.append(r["ops_per_s"] / f["ops_per_s"])
                    if f["cpu_us_per_op"] > 0:
                        cpu_ratios.append(r["cpu_us_per_op"] / f["cpu_us_per_op"])
            row["ratio"] = _median(ratios) if ratios else None
            row["cpu_ratio"] = _median(cpu_ratios) if cpu_ratios else None
            row["ratios"] = ratios
            rows.append(row)
    return rows


def _find(rows: list[dict[str, Any]], workload: str, impl: str) -> dict[str, Any] | None:
    for r in rows:
        if r["workload"] == workload and r["impl"] == impl and "skipped" not in r:
            return r
    return None


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 7's targets, each with the measured value and pass/fail."""
    out: list[dict[str, Any]] = []

    def check(name: str, ok: bool, measured: str) -> None:
        out.append({"target": name, "ok": ok, "measured": measured})

    for r in rows:
        if r["impl"] != "aetcd" or "skipped" in r or r.get("ratio") is None:
            continue
        w = r["workload"]
        if w in ("watch", "leases"):
            continue
        check(f"{w}: >= 0.95 x floor", r["ratio"] >= 0.95, f"{r['ratio']:.2f} x floor")
    aw, fw = _find(rows, "watch", "aetcd"), _find(rows, "watch", FLOOR)
    if aw and fw:
        check("watch: events/s >= floor", aw["ratio"] >= 1.0, f"{aw['ratio']:.3f} x floor")
        check(
            "watch: p50 delay <= floor",
            aw["p50_us"] <= fw["p50_us"],
            f"{aw['p50_us'] / 1000:.1f} ms vs {fw['p50_us'] / 1000:.1f} ms",
        )
        check(
            "watch: CPU/event <= floor",
            aw["cpu_us_per_op"] <= fw["cpu_us_per_op"],
            f"{aw['cpu_us_per_op']:.1f} us vs {fw['cpu_us_per_op']:.1f} us",
        )
    # Coalescing against Go's clientv3 (same run): reads by default, writes opt-in.
    for w, impl in (("get64", "aetcd"), ("put64", "aetcd-cw")):
        a, g = _find(rows, w, impl), _find(rows, w, "go")
        if a and g and "skipped" not in a and "skipped" not in g:
            check(
                f"{w} ({impl}): >= 1.0 x Go ops/s",
                a["ops_per_s"] >= g["ops_per_s"],
                f"{a['ops_per_s'] / g['ops_per_s']:.2f} x Go",
            )
            check(
                f"{w} ({impl}): CPU/op <= Go's",
                a["cpu_us_per_op"] <= g["cpu_us_per_op"],
                f"{a['cpu_us_per_op']:.1f} us vs {g['cpu_us_per_op']:.1f} us",
            )
    # The blocking client (issue 15): 1 thread within 1.3 x the async client's
    # latency; 64 threads >= 2 x python-etcd3 (pure-Python protobuf) and >= bare sync stubs.
    for w in ("get1", "put1"):
        s, a = _find(rows, w, "aetcd-sync"), _find(rows, w, "aetcd")
        if s and a:
            check(
                f"{w} (aetcd.sync): p50 <= 1.3 x the async client's",
                s["p50_us"] <= 1.3 * a["p50_us"],
                f"{s['p50_us'] / a['p50_us']:.2f} x ({s['p50_us']:.0f} vs {a['p50_us']:.0f} us)",
            )
    for w in ("get64", "put64"):
        s = _find(rows, w, "aetcd-sync")
        for other, factor in (("etcd3-pp", 2.0), ("floor-sync", 1.0)):
            o = _find(rows, w, other)
            if s and o:
                check(
                    f"{w} (aetcd.sync): >= {factor:g} x {other} ops/s",
                    s["ops_per_s"] >= factor * o["ops_per_s"],
                    f"{s['ops_per_s'] / o['ops_per_s']:.2f} x {other}",
                )
    al, fl = _find(rows, "leases", "aetcd"), _find(rows, "leases", FLOOR)
    if al:
        check(
            "1,000 leases: < 2% of one core",
            al["cpu_pct_core"] < 2.0,
            f"{al['cpu_pct_core']:.2f}% of a core",
        )
    if al and fl:
        check(
            "1,000 leases: CPU <= the floor's",
            al["cpu_pct_core"] <= fl["cpu_pct_core"],
            f"{al['cpu_pct_core']:.2f}% vs {fl['cpu_pct_core']:.2f}% of a core",
        )
    peer_lock = [
        r
        for r in rows
        if r["impl"] in PYTHON_PEERS and r["workload"].startswith("lock") and "skipped" not in r
    ]
    best = max(peer_lock, key=lambda r: r["ops_per_s"], default=None)
    for w in ("lock_reuse", "lock_new"):
        a = _find(rows, w, "aetcd")
        if a and best:
            check(
                f"{w}: >= 2 x best Python peer",
                a["ops_per_s"] >= 2 * best["ops_per_s"],
                f"{a['ops_per_s']:.0f}/s vs {best['impl']} {best['ops_per_s']:.0f}/s",
            )
    a = _find(rows, "lock_reuse", "aetcd")
    if a:
        check("lock_reuse: >= 1,500 cycles/s", a["ops_per_s"] >= 1500, f"{a['ops_per_s']:.0f}/s")
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    head = [
        "workload",
        "impl",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "CPU us/op",
        "x floor",
        "(range)",
        "CPU x floor",
    ]
    lines: list[list[str]] = []
    for r in rows:
        if "skipped" in r:
            lines.append([r["workload"], r["impl"], "skipped", "", "", "", "", "", ""])
            continue
        cpu = _fmt(r["cpu_us_per_op"], ".1f")
        if r["workload"] == "leases":
            cpu += f" ({r['cpu_pct_core']:.2f}% core)"
        ops = _fmt(r["ops_per_s"], ",.0f") + ("" if r.get("complete", True) else " (incomplete)")
        lat = r["workload"] != "leases"
        lines.append(
            [
                r["workload"],
                r["impl"],
                ops,
                _fmt(r["p50_us"] / 1000, ".2f") if lat else "-",
                _fmt(r["p99_us"] / 1000, ".2f") if lat else "-",
                cpu,
                _fmt(r.get("ratio"), ".2f"),
                f"{min(r['ratios']):.2f}-{max(r['ratios']):.2f}" if len(r["ratios"]) > 1 else "",
                _fmt(r.get("cpu_ratio"), ".2f"),
            ]
        )
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    prev = None
    for line in lines:
        if prev is not None and line[0] != prev:
            out.append("")
        prev = line[0]
        out.append(fmt.format(*line))
    return "\n".join(out)


def targets_text(checks: list[dict[str, Any]], markdown: bool = False) -> str:
    if markdown:
        out = ["| target | measured | met |", "|---|---|---|"]
        out += [
            f"| {c['target']} | {c['measured']} | {'yes' if c['ok'] else '**no**'} |"
            for c in checks
        ]
        return "\n".join(out)
    return "\n".join(
        f"  [{'x' if c['ok'] else ' '}] {c['target']}: {c['measured']}" for c in checks
    )


def png(rows: list[dict[str, Any]], path: Path, title: str) -> str | None:
    """Draw ops/s relative to the floor per workload; returns an error text or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib unavailable ({exc})"
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 8.5))
    width = 0.8 / max(1, len(impls))
    for k, impl in enumerate(impls):
        xs, ys, cs = [], [], []
        for i, w in enumerate(workloads):
            r = _find(rows, w, impl)
            if r is None:
                continue
            xs.append(i + (k - (len(impls) - 1) / 2) * width)
            ys.append(r.get("ratio") or 0.0)
            cs.append(r.get("cpu_ratio") or 0.0)
        ax1.bar(xs, ys, width, label=impl)
        ax2.bar(xs, cs, width, label=impl)
    for ax, label in (
        (ax1, "ops/s relative to bare grpc.aio (higher is better)"),
        (ax2, "client CPU per op relative to bare grpc.aio (lower is better)"),
    ):
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads, rotation=20)
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=8, ncol=len(impls))
    ax1.axhline(0.95, color="red", linewidth=0.8, linestyle="--")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


MD_START = "<!-- bench:results:start -->"
MD_END = "<!-- bench:results:end -->"


def markdown_block(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        MD_START,
        f"Measured {meta['date']} with:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"Machine: {meta['nproc']} cores ({meta['cpu']}), Linux {meta['kernel']}; "
        f"Python {meta['python']}, grpcio {meta['grpcio']}, protobuf {meta['protobuf']}; "
        f"etcd {meta['etcd']} single member on loopback, {meta['etcd_mode']}; "
        f"aetcd at {meta['commit']}. Load average at start: {meta['loadavg']}.",
        f"Each figure is the median of {meta['reps']} interleaved repetitions of "
        f"{meta['duration']} s (after {meta['warmup']} s warm-up); ratios compare runs of "
        "the same repetition.",
        "",
    ]
    peers = meta.get("peers") or {}
    if peers:
        lines.append("Peers: " + "; ".join(f"{k} {v}" for k, v in peers.items()) + ".")
        lines.append("")
    lines += [table(result["rows"], markdown=True), "", targets_text(result["targets"], True)]
    lines += ["", MD_END]
    return "\n".join(lines)


def update_markdown(path: Path, block: str) -> None:
    """Replace the results block of BENCHMARKS.md (or append one)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if MD_START in text and MD_END in text:
        head, rest = text.split(MD_START, 1)
        _, tail = rest.split(MD_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
