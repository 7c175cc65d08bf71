"""What ``import aetcd`` may and may not do to a process (issue: installs and runs
wherever Python services live).

* It changes nothing process-wide: no environment variable, no gRPC setting.
* It imports without a warning, even with warnings turned into errors.
* It refuses protobuf/grpcio releases outside the declared range with one
  clear ImportError naming the range (``aetcd/_versions.py``).
* Its code names no private grpc or protobuf API outside the generated stubs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aetcd import _versions

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "aetcd"


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_import_leaves_the_environment_alone() -> None:
    code = """
import json, os
before = dict(os.environ)
writes = []
real_putenv = os.putenv
os.putenv = lambda k, v: (writes.append(k), real_putenv(k, v))
os.unsetenv = lambda k: writes.append(k)
import aetcd, aetcd.recipes, aetcd.testing
print(json.dumps({"same": dict(os.environ) == before, "writes": writes}))
"""
    proc = run(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"same": True, "writes": []}


def test_import_after_grpc_is_the_same_as_before_it() -> None:
    # No import-order dependent behaviour: gRPC is left as the process set it up.
    code = "import os, aetcd, grpc; print(os.environ.get('GRPC_EXPERIMENTS'))"
    assert run(code).stdout.strip() == "None"
    code = "import os, grpc, aetcd; print(os.environ.get('GRPC_EXPERIMENTS'))"
    assert run(code).stdout.strip() == "None"


def test_import_is_warning_free() -> None:
    proc = run(
        "import aetcd, aetcd.recipes, aetcd.testing, aetcd._pb.v3lock_pb2_grpc", "-W", "error"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("module", "version", "shown"),
    [
        ("grpc", "1.66.1", "grpcio >= 1.66.2, < 2"),
        ("grpc", "2.0.0", "grpcio >= 1.66.2, < 2"),
        ("google.protobuf", "5.26.0", "protobuf >= 5.26.1, < 8"),
        ("google.protobuf", "4.25.9", "protobuf >= 5.26.1, < 8"),
        ("google.protobuf", "8.0.0rc1", "protobuf >= 5.26.1, < 8"),
    ],
)
def test_unsupported_runtimes_are_refused_with_the_range(
    module: str, version: str, shown: str
) -> None:
    code = f"import {module} as m; m.__version__ = {version!r}; import aetcd"
    proc = run(code)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: aetcd supports " + shown), last
    assert version in last


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("5.26.1", True),
        ("5.29.6", True),
        ("6.31.1", True),
        ("7.36.2", True),
        ("7.99.0.dev1", True),
        ("5.26.0", False),
        ("8.0.0", False),
    ],
)
def test_version_bounds(version: str, ok: bool) -> None:
    if ok:
        _versions.check("protobuf", version, _versions.PROTOBUF_RANGE)
    else:
        with pytest.raises(ImportError, match="aetcd supports protobuf"):
            _versions.check("protobuf", version, _versions.PROTOBUF_RANGE)


def test_declared_range_matches_the_checked_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = set(project["dependencies"])
    assert "protobuf>=5.26.1,<8" in deps
    assert "grpcio>=1.66.2,<2" in deps
    assert _versions.PROTOBUF_RANGE == ((5, 26, 1), (8,))
    assert _versions.GRPCIO_RANGE == ((1, 66, 2), (2,))


# Private names of grpc and protobuf: underscore modules and attributes, the
# Cython layer, experimental APIs, and private keyword arguments.
PRIVATE = re.compile(
    r"grpc\._[a-z]|_cython|cygrpc|grpc\.experimental|_registered_method|google\.protobuf\.internal"
    r"|\bupb\b|_upb|GRPC_EXPERIMENTS|os\.environ\[[^]]*\]\s*="
)


def test_no_private_grpc_or_protobuf_names_outside_the_generated_stubs() -> None:
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_pb" in path.relative_to(PACKAGE).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if PRIVATE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == []


def test_the_generated_stubs_carry_no_version_gate() -> None:
    # scripts/genproto removes them; aetcd/_versions.py is the one gate.
    for path in sorted((PACKAGE / "_pb").glob("*.py")):
        text = path.read_text()
        assert "ValidateProtobufRuntimeVersion" not in text, path.name
        assert "first_version_is_lower" not in text, path.name
        assert "GRPC_GENERATED_VERSION" not in text, path.name
