"""``scripts/bench``: measure aetcd against the bare grpc.aio floor (and peers) in one run.

    scripts/bench                          # everything, 5 interleaved repetitions
    scripts/bench --quick                  # a smoke test (short runs, one repetition)
    scripts/bench --workloads put64,get64 --duration 5
    scripts/bench --setup-peers            # create .bench-venvs/ with the peer clients
    scripts/bench --peers                  # also run the installed peers
    scripts/bench --go                     # also run the Go clientv3 figure (if it builds)
    scripts/bench --sync                   # also the blocking clients on put/get
    scripts/bench --profile put64,get64,range1000   # py-spy profiles of aetcd and the floor
    scripts/bench --record                 # write the results block of BENCHMARKS.md

Every (workload, implementation) run is a worker process of its own, so its
CPU is the client's alone; repetitions rotate the order of implementations.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import queue
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import harness, peers, report

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "worker.py"
RESULTS = ROOT / "bench-results"

# name -> (worker workload, operations in flight)
WORKLOADS: dict[str, tuple[str, int]] = {
    "put1": ("put", 1),
    "put64": ("put", 64),
    "get1": ("get", 1),
    "get64": ("get", 64),
    "txn1": ("txn", 1),
    "txn64": ("txn", 64),
    "range1000": ("range", 1),
    "watch": ("watch", 1),
    "leases": ("leases", 1),
    "lock_reuse": ("lock_reuse", 1),
    "lock_new": ("lock_new", 1),
}
GET_KEYS = 64
# gRPC core's older client I/O path: an opt-in a user makes for their process.
OPT_IN_EXPERIMENTS = "-event_engine_client"
RANGE_KEYS = 1000
# Implementations run in this interpreter (.venv), on gRPC's defaults.
LOCAL_IMPLS = frozenset(
    ("floor", "floor-typed", "aetcd", "aetcd-nc", "aetcd-cw", "go", "aetcd-sync", "floor-sync")
)


class Worker:
    """A worker process whose stdout lines are read by a thread (for timeouts)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        self.result: dict[str, Any] | None = None

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, marker: str, timeout: float) -> bool:
        """Read lines until *marker* (True), the result, EOF or *timeout* (False)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                self.lines.put(None)
                return False
            if line.startswith(harness.RESULT):
                self.result = json.loads(line[len(harness.RESULT) :])
            if line == marker:
                return True
            if time.monotonic() > deadline:
                return False

    def finish(self, timeout: float) -> dict[str, Any]:
        if self.result is None:
            self.wait_for("\0never", timeout)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.result is None:
            tail = "".join(self.stderr[-8:]).strip()
            return {"error": f"worker failed (exit {self.proc.returncode}): {tail[-600:]}"}
        return self.result


class Bench:
    def __init__(self, args: argparse.Namespace, endpoint: str) -> None:
        self.a = args
        self.endpoint = endpoint

    # -- implementations ------------------------------------------------------------

    def python_for(self, impl: str) -> tuple[str, dict[str, str] | None]:
        if impl in ("floor-t", "aetcd-t"):
            # The documented opt-in (docs/connecting.md): gRPC's own variable.
            return sys.executable, {**os.environ, "GRPC_EXPERIMENTS": OPT_IN_EXPERIMENTS}
        if impl in LOCAL_IMPLS:
            return sys.executable, None
        if impl == "etcd3-pp":
            # python-etcd3 0.12 imports only with the pure-Python protobuf.
            env = peers.peer_env("etcd3")
            env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
            return str(peers.python_of("etcd3")), env
        return str(peers.python_of(impl)), peers.peer_env(impl)

    def worker_argv(self, impl: str, workload: str, prefix: str, **extra: Any) -> list[str]:
        kind, concurrency = WORKLOADS[workload] if workload in WORKLOADS else (workload, 64)
        a = self.a
        if impl == "go":
            from . import golang

            base = [str(golang.BINARY)]
        else:
            base = [self.python_for(impl)[0], "-P", str(WORKER)]
        argv = [
            *base,
            "--impl",
            impl,
            "--workload",
            kind,
            "--endpoint",
            self.endpoint,
            "--prefix",
            prefix,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(a.duration),
            "--warmup",
            str(a.warmup),
            "--events",
            str(a.events),
            "--leases",
            str(a.leases),
            "--ttl",
            str(a.ttl),
            "--keys",
            str(RANGE_KEYS if kind == "range" else GET_KEYS),
        ]
        for k, v in extra.items():
            argv += [f"--{k}", str(v)]
        return argv

    def run_one(
        self, impl: str, workload: str, rep: int, profile: Path | None = None
    ) -> dict[str, Any]:
        kind, _ = WORKLOADS[workload]
        if kind == "range":
            prefix = "bench/range/"
        elif kind == "get":
            prefix = "bench/get/"
        else:
            prefix = f"bench/{workload}/{impl}/{rep}/"
        _, env = self.python_for(impl)
        w = Worker(self.worker_argv(impl, workload, prefix), env)
        budget = 120.0 + self.a.duration + (self.a.ttl if kind == "leases" else 0)
        if kind == "watch":
            if not w.wait_for(harness.READY, 60):
                return w.finish(5)
            sampler = spy_start(w.proc.pid, profile) if profile is not None else None
            writer = Worker(self.worker_argv("floor", "writer", prefix))
            wres = writer.finish(120)
            res = w.finish(60)
            res["writer_ops_per_s"] = wres.get("ops_per_s")
            if sampler is not None:
                try:
                    sampler.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    sampler.kill()
            return res
        if profile is not None:
            if w.wait_for(harness.MEASURING, 120):
                spy(w.proc.pid, self.a.duration, profile)
        return w.finish(budget)

    # -- etcd state -----------------------------------------------------------------

    def admin(self, coro_fn: Any) -> Any:
        """Run ``coro_fn(client)`` with the orchestrator's own aetcd client.

        One event loop and one client for the whole run: grpc.aio binds its
        poller to the first loop, and a second ``asyncio.run`` prints spurious
        "Event loop is closed" tracebacks.
        """
        import aetcd

        if not hasattr(self, "_loop"):
            self._loop = asyncio.new_event_loop()
            self._client = aetcd.Client(self.endpoint, timeout=60)
        return self._loop.run_until_complete(coro_fn(self._client))

    def close(self) -> None:
        if hasattr(self, "_loop"):
            self._loop.run_until_complete(self._client.close())
            self._loop.close()

    def populate(self, workload: str) -> None:
        kind, _ = WORKLOADS[workload]
        if kind not in ("get", "range"):
            return
        count, prefix = (
            (GET_KEYS, b"bench/get/") if kind == "get" else (RANGE_KEYS, b"bench/range/")
        )

        async def go(c: Any) -> None:
            await c.delete(prefix, prefix=True)
            sem = asyncio.Semaphore(64)

            async def put(i: int) -> None:
                async with sem:
                    await c.put(b"%sk%04d" % (prefix, i), b"v" * 32)

            await asyncio.gather(*(put(i) for i in range(count)))

        self.admin(go)

    def compact(self) -> None:
        """Compact history (waiting for it) so that every run meets the same store."""
        import aetcd

        async def go(c: Any) -> None:
            rev = (await c.get(b"bench/", count_only=True)).header.revision
            try:
                await c.compact(rev, physical=True)
            except aetcd.CompactedError:
                pass

        self.admin(go)

    def etcd_version(self) -> str:
        async def go(c: Any) -> str:
            return str((await c.status()).version)

        try:
            return str(self.admin(go))
        except Exception as exc:  # report, do not fail the run
            return f"? ({exc})"


def spy(pid: int, duration: float, out: Path) -> None:
    """Sample *pid* with py-spy for *duration* seconds into collapsed stacks."""
    exe = Path(sys.executable).parent / "py-spy"
    subprocess.run(
        [
            str(exe),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(duration))),
            "--rate",
            "500",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(out),
        ],
        capture_output=True,
        check=False,
    )


def spy_start(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """Sample *pid* with py-spy until it exits (for the watch workload)."""
    exe = Path(sys.executable).parent / "py-spy"
    argv = [str(exe), "record", "--pid", str(pid), "--rate", "500", "--format", "raw"]
    return subprocess.Popen(
        [*argv, "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ensure_package(module: str, requirement: str) -> bool:
    """Install a bench-only dependency into this (.venv) interpreter if missing."""
    try:
        __import__(module)
        return True
    except ImportError:
        pass
    print(f"bench: installing {requirement} into {sys.prefix} (bench-only dependency)")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", requirement],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        print(f"bench: could not install {requirement}: {r.stderr.strip()[-300:]}")
        return False
    return True


def machine_facts(endpoint_version: str, args: argparse.Namespace) -> dict[str, Any]:
    import google.protobuf
    import grpc

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        or "?"
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "aetcd"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": "scripts/bench " + " ".join(shlex.quote(x) for x in args.argv),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "etcd": endpoint_version,
        "etcd_mode": "no fsync (--unsafe-no-fsync)" if not args.endpoint else "external",
        "commit": commit + ("+dirty" if dirty else ""),
        "reps": args.reps,
        "duration": args.duration,
        "warmup": args.warmup,
        "events": args.events,
        "leases": args.leases,
        "ttl": args.ttl,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short runs, one repetition")
    p.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--duration", type=float, help="measured seconds per run (default 2)")
    p.add_argument("--warmup", type=float, help="seconds before measuring (default 0.5)")
    p.add_argument("--reps", type=int, help="interleaved repetitions (default 5)")
    p.add_argument("--events", type=int, help="watch events (default 20000)")
    p.add_argument("--leases", type=int, help="kept-alive leases (default 1000)")
    p.add_argument("--ttl", type=int, help="TTL of those leases, s (default 10)")
    p.add_argument(
        "--json", type=Path, help="write results here (default bench-results/latest.json)"
    )
    p.add_argument(
        "--png", type=Path, help="write the chart here (default bench-results/latest.png)"
    )
    p.add_argument("--no-png", action="store_true", help="skip the chart")
    p.add_argument(
        "--peers", action="store_true", help="also run the peers installed in .bench-venvs/"
    )
    p.add_argument("--setup-peers", action="store_true", help="create .bench-venvs/ and exit")
    p.add_argument("--go", action="store_true", help="also run the Go clientv3 benchmark")
    p.add_argument(
        "--sync",
        action="store_true",
        help="also run the blocking clients on put/get: aetcd.sync, bare sync grpc stubs and "
        "python-etcd3 on the pure-Python protobuf (etcd3-pp, with --setup-peers)",
    )
    p.add_argument(
        "--impls", help="comma-separated implementations (default: floor,aetcd[,peers][,go])"
    )
    p.add_argument("--endpoint", help="use this etcd (host:port) instead of starting one")
    p.add_argument(
        "--profile",
        metavar="WORKLOADS",
        help="py-spy profiles of aetcd and floor for these workloads, then exit",
    )
    p.add_argument(
        "--record", action="store_true", help="update the results block of BENCHMARKS.md"
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print (with --record: record) the results of an earlier run's JSON",
    )
    a = p.parse_args(argv)
    a.argv = argv
    quick = a.quick
    a.duration = a.duration if a.duration is not None else (0.5 if quick else 2.0)
    a.warmup = a.warmup if a.warmup is not None else (0.2 if quick else 0.5)
    a.reps = a.reps if a.reps is not None else (1 if quick else 5)
    a.events = a.events if a.events is not None else (2000 if quick else 20_000)
    a.leases = a.leases if a.leases is not None else (100 if quick else 1000)
    a.ttl = a.ttl if a.ttl is not None else (3 if quick else 10)
    names = a.workloads.split(",") if a.workloads else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    a.names = names
    return a


def render(args: argparse.Namespace) -> int:
    """Recompute rows and targets from the runs of a saved JSON (keeps its command)."""
    result = json.loads(args.render.read_text())
    result["rows"] = report.summarise(result["runs"])
    result["targets"] = report.targets(result["rows"])
    print(report.table(result["rows"]))
    print()
    print(report.targets_text(result["targets"]))
    if args.record:
        report.update_markdown(ROOT / "BENCHMARKS.md", report.markdown_block(result))
        print("bench: updated the results block of BENCHMARKS.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.render:
        return render(args)
    if args.setup_peers:
        from . import golang

        for name, status in peers.setup().items():
            print(f"{name:12} {status}")
        print(f"{'go':12} {golang.install()}")
        if golang.build():
            print(f"{'go':12} built {golang.BINARY}")
        return 0
    if args.endpoint:
        return run(args, args.endpoint)
    from aetcd.testing import EtcdServer

    with EtcdServer() as server:  # fsync=False: --unsafe-no-fsync
        return run(args, server.endpoint)


def run(args: argparse.Namespace, endpoint: str) -> int:
    bench = Bench(args, endpoint)
    try:
        return run_bench(bench, args, endpoint)
    finally:
        bench.close()


def run_bench(bench: Bench, args: argparse.Namespace, endpoint: str) -> int:
    if args.profile:
        from . import spy as spymod

        ensure_package("pyinstrument", "pyinstrument")  # not needed by py-spy; kept light
        if not (Path(sys.executable).parent / "py-spy").exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=False
            )
        return spymod.profile_workloads(bench, args.profile.split(","))
    impls = ["floor", "floor-t", "aetcd", "aetcd-t"]
    if args.impls:
        impls = args.impls.split(",")
    else:
        if args.peers:
            impls += peers.installed()
        if args.go:
            from . import golang

            if golang.build():
                impls.append("go")
    meta = machine_facts(bench.etcd_version(), args)
    meta["peers"] = {
        name: f"{(peers.info(name) or {}).get('version', '?')}"
        + (
            f" ({(peers.info(name) or {}).get('note')})"
            if (peers.info(name) or {}).get("note")
            else ""
        )
        for name in impls
        if name in peers.PEERS
    }
    if "go" in impls:
        from . import golang

        meta["peers"]["go"] = golang.version()
    print(
        f"bench: etcd {meta['etcd']} at {endpoint}; {meta['nproc']} cores; load {meta['loadavg']}"
    )
    print(f"bench: implementations {impls}; {args.reps} x {args.duration} s per run")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    unsupported: set[tuple[str, str]] = set()
    for workload in args.names:
        bench.populate(workload)
        these = list(impls)
        if not args.impls and WORKLOADS[workload][0] in ("put", "get", "txn", "range"):
            these.insert(1, "floor-typed")  # the least a typed client adds to the floor
        if not args.impls and WORKLOADS[workload][0] in ("get", "range"):
            these.insert(3, "aetcd-nc")  # reads: also without coalescing
        if not args.impls and WORKLOADS[workload][0] == "put":
            these.insert(3, "aetcd-cw")  # writes: also with (opt-in) write coalescing
        if args.sync and WORKLOADS[workload][0] in ("put", "get"):
            these += ["aetcd-sync", "floor-sync"]
            if peers.info("etcd3"):
                these.append("etcd3-pp")
        runs[workload] = {impl: [] for impl in these}
        for rep in range(args.reps):
            order = these[rep % len(these) :] + these[: rep % len(these)]
            if rep % 2:
                order.reverse()
            for impl in order:
                if (workload, impl) in unsupported:
                    continue
                res = bench.run_one(impl, workload, rep)
                runs[workload][impl].append(res)
                if "unsupported" in res:
                    unsupported.add((workload, impl))
                    print(f"  {workload:10} {impl:10} unsupported: {res['unsupported']}")
                elif "error" in res:
                    print(f"  {workload:10} {impl:10} ERROR {res['error']}")
                else:
                    print(
                        f"  {workload:10} {impl:10} rep {rep}: {res['ops_per_s']:10,.0f} ops/s  "
                        f"p50 {res['p50_us'] / 1000:7.2f} ms  CPU {res['cpu_us_per_op']:7.1f} us/op"
                    )
                bench.compact()
        # keep floor first: the floor row of a repetition pairs with everyone else's
        runs[workload] = {k: runs[workload][k] for k in these}
    rows = report.summarise(runs)
    checks = report.targets(rows)
    result = {"meta": meta, "rows": rows, "targets": checks, "runs": runs}
    print()
    print(report.table(rows))
    print()
    print("watch: ops/s = events/s, p50/p99 = delay behind the writer, CPU per event.")
    print("leases: ops/s = keep-alive replies/s, CPU per keep-alive (and % of one core).")
    print("x floor = ops/s / floor ops/s; CPU x floor = CPU per op / floor's (lower is better).")
    print()
    print("targets:")
    print(report.targets_text(checks))
    RESULTS.mkdir(exist_ok=True)
    json_path = args.json or RESULTS / "latest.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1))
    print(f"\nbench: wrote {json_path}")
    if not args.no_png:
        png_path = args.png or RESULTS / "latest.png"
        png_path.parent.mkdir(parents=True, exist_ok=True)
        error = None
        if ensure_package("matplotlib", "matplotlib"):
            title = (
                f"aetcd vs bare grpc.aio — {meta['date']}, {meta['nproc']} cores, "
                f"etcd {meta['etcd']} (no fsync), {meta['reps']} x {meta['duration']} s"
            )
            error = report.png(rows, png_path, title)
        else:
            error = "matplotlib could not be installed"
        print(f"bench: {'wrote ' + str(png_path) if error is None else 'no chart: ' + error}")
    if args.record:
        report.update_markdown(ROOT / "BENCHMARKS.md", report.markdown_block(result))
        print("bench: updated the results block of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
