"""Checks that apply to every test directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The compatibility tier (scripts/compat) tests the installed wheel: make
    # sure the source tree did not shadow it.
    if os.environ.get("AETCD_EXPECT_INSTALLED"):
        import aetcd

        source = Path(__file__).resolve().parent.parent / "aetcd"
        if Path(aetcd.__file__).resolve().parent == source:
            raise pytest.UsageError(f"aetcd was imported from the source tree ({aetcd.__file__})")
