"""Hooks and fixtures of the fault suite; what it is and its helpers: ``fault_helpers``
(a unique module name, so test directories can be collected together)."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
from fault_helpers import _FIGURES, SOAK, figures  # noqa: F401  (a fixture)

from aetcd.testing import find_etcd_binary

#: etcd 3.5.0-3.5.2 can diverge after a kill -9 under load (etcd #13766).
_FIRST_CRASH_SAFE = (3, 5, 3)


@pytest.fixture(scope="session", autouse=True)
def _crash_safe_etcd() -> None:
    """Refuse to judge the client on a server whose members can diverge after a crash."""
    binary = find_etcd_binary()
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"etcd Version: (\d+)\.(\d+)\.(\d+)", out)
    assert found, f"{binary} --version printed no version: {out!r}"
    version = tuple(int(part) for part in found.groups())
    if (3, 5, 0) <= version < _FIRST_CRASH_SAFE:
        pytest.fail(
            f"{binary} is etcd {'.'.join(found.groups())}: its members can diverge after a "
            "kill -9 under load (etcd #13766, fixed in 3.5.3), which this suite would blame "
            "on the client. Run scripts/install (it fetches 3.5.16 into .etcd/bin) or set "
            "$AETCD_ETCD_BIN to an etcd >= 3.5.3.",
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: long fault-injection variants, run only with AETCD_SOAK=1"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SOAK:
        return
    skip = pytest.mark.skip(reason="soak tier: set AETCD_SOAK=1 to run")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("aetcd fault-suite figures")
    for name, measured in _FIGURES:
        terminalreporter.write_line(f"{name}: {json.dumps(measured, sort_keys=True)}")


