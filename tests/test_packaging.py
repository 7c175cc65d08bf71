"""The distributions a user or a downstream packager gets from ``python -m build``.

The compatibility tier (``scripts/compat``) installs the wheel into fresh
environments and runs the demo and a real-etcd subset there; this checks
what is in the files and their metadata.
"""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist, proc.stdout + proc.stderr


def test_build_prints_no_warning(dist: tuple[Path, Path, str]) -> None:
    *_, log = dist
    assert "Warning" not in log and "deprecated" not in log.lower(), log


def test_twine_check_is_clean(dist: tuple[Path, Path, str]) -> None:
    wheel, sdist, _ = dist
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_wheel_metadata(dist: tuple[Path, Path, str]) -> None:
    wheel, _, _ = dist
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(name))
    assert meta["Name"] == "aetcd-client"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.11"
    requires = meta.get_all("Requires-Dist")
    assert "grpcio<2,>=1.66.2" in requires and "protobuf<8,>=5.26.1" in requires
    classifiers = meta.get_all("Classifier")
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers


def test_wheel_holds_the_package_and_not_the_tests(dist: tuple[Path, Path, str]) -> None:
    wheel, _, _ = dist
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {"aetcd/__init__.py", "aetcd/py.typed", "aetcd/_pb/rpc_pb2.pyi"} <= names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "protos/", "scripts/")) for n in names)


def test_sdist_can_rebuild_and_test(dist: tuple[Path, Path, str]) -> None:
    # A downstream packager needs the schema, its generator, the tests and the docs.
    _, sdist, _ = dist
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in (
        "protos/rpc.proto",
        "scripts/genproto",
        "scripts/test",
        "tests/integration/test_kv.py",
        "tests/unit/test_reach.py",
        "docs/index.md",
        "docs/conf.py",
        "LICENSE",
        "pyproject.toml",
    ):
        assert needed in names, needed
    assert not any(n.startswith("docs/_build/") or "__pycache__" in n for n in names)
