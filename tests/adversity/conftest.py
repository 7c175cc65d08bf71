"""Hooks and fixtures of the fault suite; what it is and its helpers: ``fault_helpers``
(a unique module name, so test directories can be collected together)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fault_helpers import _FIGURES, SOAK, figures  # noqa: F401  (a fixture)


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


