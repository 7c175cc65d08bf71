"""The documentation builds without a single warning, and its code is correct.

* ``scripts/docs`` builds the Sphinx site (guides and the API reference
  generated from the docstrings) with warnings as errors and nitpicky
  references; a broken docstring or reference fails this test.
* The script really fails on a warning (checked on a tiny broken project).
* Every public name is in the API reference.
* Every ```` ```python ```` block of the guides runs, in order, against a
  private etcd (``127.0.0.1:2379`` is replaced by its endpoint). Blocks that
  cannot run here (a TLS cluster, a 3-member membership change, code of
  another library) are fenced ```` ```py ```` instead: those are only
  compiled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import aetcd
import aetcd.recipes
import aetcd.testing
from aetcd.testing import EtcdServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCRIPT = ROOT / "scripts" / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts and p.name != "README.md")


def build(out: Path, source: Path = DOCS) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), str(out), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    proc = build(out)
    assert proc.returncode == 0, f"docs build failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_docs_build_without_warnings(site: Path) -> None:
    for page in ("index", "quickstart", "fencing", "migration", "api/client", "api/errors"):
        assert (site / f"{page}.html").is_file(), page


def test_docs_build_fails_on_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text('project = "broken"\n')
    (source / "index.rst").write_text("Broken\n======\n\nSee :class:`no.such.Class`.\n")
    proc = build(tmp_path / "out", source)
    assert proc.returncode != 0
    assert "no.such.Class" in proc.stderr


def _inventory(site: Path) -> set[str]:
    """Names of the Python objects in the built site's ``objects.inv``."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then zlib-compressed entries
        header_end = data.index(b"\n", header_end) + 1
    lines = zlib.decompress(data[header_end:]).decode().splitlines()
    return {line.split(" ", 1)[0] for line in lines if " py:" in line}


@pytest.mark.parametrize("module", [aetcd, aetcd.recipes, aetcd.testing], ids=lambda m: m.__name__)
def test_api_reference_covers_the_public_api(site: Path, module: object) -> None:
    documented = _inventory(site)
    missing = []
    for name in module.__all__:  # type: ignore[attr-defined]
        obj = getattr(module, name)
        homes = {f"{module.__name__}.{name}"}  # type: ignore[attr-defined]
        if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
            homes.add(f"{obj.__module__}.{obj.__qualname__}")
        if name != "__version__" and not homes & documented:
            missing.append(name)
    assert not missing, f"add these to docs/api/*.rst: {missing}"


# -- the code blocks of the guides -------------------------------------------------


def _blocks(fence: str) -> Iterator[tuple[str, str]]:
    pattern = re.compile(rf"^```{fence}\n(.*?)^```", re.S | re.M)
    for page in PAGES:
        text = page.read_text()
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{page.relative_to(DOCS)}:{line}", match.group(1)


RUN = list(_blocks("python"))
COMPILE = list(_blocks("py"))


def _as_coroutine(code: str, name: str) -> str:
    return f"async def {name}():\n    import aetcd\n" + textwrap.indent(code, "    ")


def test_guides_have_code() -> None:
    assert len(RUN) >= 40
    assert COMPILE


@pytest.mark.parametrize("where", [w for w, _ in COMPILE])
def test_guide_block_compiles(where: str) -> None:
    code = dict(COMPILE)[where]
    compile(_as_coroutine(code, "block"), where, "exec")


@pytest.fixture(scope="module")
def docs_etcd() -> Iterator[str]:
    """A private etcd: the guides' examples compact, add users and roles."""
    with EtcdServer(name="aetcd-docs") as server:
        yield server.endpoint


@pytest.mark.parametrize("where", [w for w, _ in RUN])
async def test_guide_block_runs(where: str, docs_etcd: str) -> None:
    code = dict(RUN)[where].replace("127.0.0.1:2379", docs_etcd)
    namespace: dict[str, object] = {}
    exec(compile(_as_coroutine(code, "block"), where, "exec"), namespace)
    await namespace["block"]()  # type: ignore[operator]
