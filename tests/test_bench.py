"""`scripts/bench --quick` runs end to end and writes the JSON it promises.

A correctness smoke test only: no timing is asserted (performance is checked
by the benchmark itself, see BENCHMARKS.md).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ROW_FIGURES = (
    "ops_per_s",
    "p50_us",
    "p99_us",
    "cpu_us_per_op",
    "cpu_pct_core",
    "ratio",
    "cpu_ratio",
)


@pytest.mark.slow
def test_bench_quick_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            str(ROOT / "scripts" / "bench"),
            "--quick",
            "--workloads",
            "put1,get64,watch",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--events",
            "300",
            "--json",
            str(out),
            "--no-png",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "x floor" in proc.stdout  # the table was printed

    data = json.loads(out.read_text())
    assert {"meta", "rows", "targets", "runs"} <= set(data)
    meta = data["meta"]
    for key in ("command", "nproc", "python", "grpcio", "etcd", "commit", "reps", "duration"):
        assert key in meta
    assert meta["command"].startswith("scripts/bench --quick")
    assert meta["etcd_mode"].startswith("no fsync")

    rows = {(r["workload"], r["impl"]): r for r in data["rows"]}
    # get64 also runs aetcd with read coalescing off (aetcd-nc), when it has the option
    assert {
        ("put1", "floor"),
        ("put1", "aetcd"),
        ("get64", "floor"),
        ("get64", "aetcd"),
        ("watch", "floor"),
        ("watch", "aetcd"),
    } <= set(rows)
    for key, row in rows.items():
        if "skipped" in row:
            assert key == ("get64", "aetcd-nc"), row
            continue
        for figure in ROW_FIGURES:
            assert isinstance(row[figure], int | float), (key, figure)
        assert row["ops_per_s"] > 0, key
        assert row["reps"] == 1
    for workload in ("put1", "get64", "watch"):
        assert rows[(workload, "floor")]["ratio"] == pytest.approx(1.0)
    assert rows[("watch", "aetcd")]["complete"] is True

    assert data["runs"]["put1"]["aetcd"][0]["ops"] > 0
    assert data["runs"]["watch"]["floor"][0]["writer_ops_per_s"] > 0
    for check in data["targets"]:
        assert set(check) == {"target", "ok", "measured"}
    assert any(c["target"].startswith("put1") for c in data["targets"])
