"""``scripts/bench --go``: the Go clientv3 figure, measured in the same run.

``bench/golang/*.go`` is built in GOPATH mode, offline, against Debian's
``golang-etcd-server-dev`` (the etcd 3.4 client sources under
``/usr/share/gocode``) with Debian's ``golang-go``. ``--setup-peers`` installs
both with ``scripts/setup-go`` (as root with apt-get); otherwise the Go figure
is skipped with a hint. The binary goes to ``.bench-venvs/go/etcdbench``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .peers import VENVS

SRC = Path(__file__).resolve().parent / "golang"
GOPATH = Path("/usr/share/gocode")
CLIENT = GOPATH / "src" / "go.etcd.io" / "etcd" / "clientv3"
BINARY = VENVS / "go" / "etcdbench"
APT_PACKAGES = ("golang-go", "golang-etcd-server-dev")
SETUP_GO = Path(__file__).resolve().parent.parent / "scripts" / "setup-go"


def install() -> str:
    """Install the Debian packages if needed, through ``scripts/setup-go`` (which
    the test suite's Go interop tier uses too); returns a status line."""
    r = subprocess.run([str(SETUP_GO)], capture_output=True, text=True, check=False)
    if r.returncode == 0:
        return "ok: go and the clientv3 sources are installed"
    return "skipped: " + (r.stdout.strip() or r.stderr.strip())[-300:]


def build() -> bool:
    """Build the Go benchmark if its sources are newer than the binary."""
    if not shutil.which("go") or not CLIENT.is_dir():
        print(f"bench: no Go figure (needs {' and '.join(APT_PACKAGES)}; see --setup-peers)")
        return False
    sources = list(SRC.glob("*.go"))
    if BINARY.exists() and all(s.stat().st_mtime <= BINARY.stat().st_mtime for s in sources):
        return True
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOCACHE": str(BINARY.parent / "cache"),
        "GOFLAGS": "",
    }
    r = subprocess.run(
        ["go", "build", "-o", str(BINARY), "."], cwd=SRC, env=env, capture_output=True, text=True
    )
    if r.returncode != 0:
        print(f"bench: the Go benchmark did not build: {r.stderr.strip()[-500:]}")
        return False
    return True


def version() -> str:
    r = subprocess.run(["go", "version"], capture_output=True, text=True, check=False)
    pkg = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "golang-etcd-server-dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"clientv3 {pkg.stdout.strip() or '?'} ({r.stdout.strip()})"
