"""``scripts/bench --setup-peers``: peer clients in virtual environments of their own.

Each peer goes to ``.bench-venvs/<name>/`` (PyPI's ``aetcd`` is martyanov's
client and shares our package name, so it can only live in a venv of its own).
A peer that fails to install is reported and skipped; the benchmark runs a
peer only when ``.bench-venvs/<name>/bench-peer.json`` exists.

python-etcd3 0.12 ships stubs generated for protobuf 3, which protobuf >= 4
refuses to load. Its ``etcdrpc`` stubs are regenerated from ``protos/`` (the
same etcd 3.5 wire schema, a superset of what it uses) with the grpcio-tools
matching its grpcio, so it runs on the fast upb protobuf like everyone else;
if that fails the pure-Python protobuf (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION
=python``) is used instead and the note says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench-venvs"

#: name -> (pip requirement, import name, distribution name)
PEERS: dict[str, tuple[str, str, str]] = {
    "etcd3": ("etcd3", "etcd3", "etcd3"),
    "aetcd-peer": ("aetcd>=1.0", "aetcd", "aetcd"),
    "etcd3aio": ("etcd3aio", "etcd3aio", "etcd3aio"),
    "etcetra": ("etcetra", "etcetra", "etcetra"),
}

INFO = "bench-peer.json"


def python_of(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def info(name: str) -> dict[str, Any] | None:
    """The install record of a peer, or None when it is not installed."""
    path = VENVS / name / INFO
    if not path.is_file() or not python_of(name).exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def installed() -> list[str]:
    return [name for name in PEERS if info(name) is not None]


def peer_env(name: str) -> dict[str, str]:
    data = info(name) or {}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(data.get("env", {}))
    return env


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def _imports(py: Path, module: str, env: dict[str, str] | None = None) -> str | None:
    """None when *module* imports in that interpreter, else the last error line."""
    r = _run([str(py), "-P", "-c", f"import {module}"], cwd=tempfile.gettempdir(), env=env)
    if r.returncode == 0:
        return None
    lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    return lines[-1] if lines else f"exit {r.returncode}"


def _version(py: Path, dist: str) -> str:
    r = _run(
        [str(py), "-P", "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        cwd=tempfile.gettempdir(),
    )
    return r.stdout.strip() or "?"


def _regenerate_etcd3_stubs(py: Path) -> str | None:
    """Regenerate python-etcd3's etcdrpc stubs from protos/; None on success."""
    grpc_version = _version(py, "grpcio")
    r = _run([str(py), "-m", "pip", "install", "--quiet", f"grpcio-tools=={grpc_version}"])
    if r.returncode != 0:
        return f"grpcio-tools=={grpc_version} did not install: {r.stderr.strip()[-300:]}"
    r = _run(
        [str(py), "-c", "import etcd3, os; print(os.path.dirname(etcd3.__file__))"],
        env={**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"},
    )
    if r.returncode != 0:
        return "cannot locate the etcd3 package"
    target = Path(r.stdout.strip()) / "etcdrpc"
    with tempfile.TemporaryDirectory() as tmp:
        inc = Path(tmp) / "inc"
        out = Path(tmp) / "out"
        (inc / "etcd3" / "etcdrpc").mkdir(parents=True)
        out.mkdir()
        names = ["auth", "kv", "rpc"]
        for n in names:
            text = (ROOT / "protos" / f"{n}.proto").read_text()
            text = re.sub(
                r'^import "(\w+\.proto)";', r'import "etcd3/etcdrpc/\1";', text, flags=re.M
            )
            (inc / "etcd3" / "etcdrpc" / f"{n}.proto").write_text(text)
        protos = [f"etcd3/etcdrpc/{n}.proto" for n in names]
        r = _run(
            [
                str(py),
                "-m",
                "grpc_tools.protoc",
                "-I.",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                *protos,
            ],
            cwd=inc,
        )
        if r.returncode != 0:
            return f"protoc failed: {r.stderr.strip()[-300:]}"
        for f in (out / "etcd3" / "etcdrpc").glob("*.py"):
            if f.name.endswith("_grpc.py") and f.name != "rpc_pb2_grpc.py":
                continue
            shutil.copy(f, target / f.name)
    return None


def setup(names: list[str] | None = None) -> dict[str, str]:
    """Create the peer venvs; returns name -> status line."""
    VENVS.mkdir(exist_ok=True)
    status: dict[str, str] = {}
    for name in names or list(PEERS):
        req, module, dist = PEERS[name]
        venv = VENVS / name
        py = python_of(name)
        (venv / INFO).unlink(missing_ok=True)
        if not py.exists():
            r = _run([sys.executable, "-m", "venv", "--clear", str(venv)])
            if r.returncode != 0:
                # sys.executable is .venv's python; a venv of a venv works, but be safe.
                r = _run(["python3", "-m", "venv", "--clear", str(venv)])
            if r.returncode != 0:
                status[name] = f"venv failed: {r.stderr.strip()[-200:]}"
                continue
        r = _run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip", req])
        if r.returncode != 0:
            status[name] = f"pip install {req} failed: {r.stderr.strip()[-300:]}"
            continue
        env: dict[str, str] = {}
        note = ""
        error = _imports(py, module)
        if error and name == "etcd3":
            failure = _regenerate_etcd3_stubs(py)
            error = _imports(py, module)
            if error is None:
                note = "etcdrpc stubs regenerated from protos/ for protobuf 7 (upb)"
            else:
                env = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
                error = _imports(py, module, {**os.environ, **env})
                note = f"pure-Python protobuf (regeneration failed: {failure or error})"
        if error:
            status[name] = f"installed but `import {module}` fails: {error}"
            continue
        data = {
            "name": name,
            "requirement": req,
            "version": _version(py, dist),
            "grpcio": _version(py, "grpcio"),
            "protobuf": _version(py, "protobuf"),
            "env": env,
            "note": note,
        }
        (venv / INFO).write_text(json.dumps(data, indent=2))
        status[name] = (
            f"ok: {dist} {data['version']} (grpcio {data['grpcio']}, protobuf "
            f"{data['protobuf']}){'; ' + note if note else ''}"
        )
    return status
