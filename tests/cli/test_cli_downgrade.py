"""``downgrade validate|enable|cancel`` against a private etcd 3.5 (cluster-wide state)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import Result, cli_async

from aetcd.testing.pytest_plugin import EtcdServerFactory


async def test_downgrade_commands(
    etcd_server_factory: EtcdServerFactory, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    server = await etcd_server_factory()

    async def cli(*args: str) -> Result:
        return await cli_async(capsysbinary, server.endpoint, *args)

    ok = await cli("downgrade", "validate", "3.4")
    assert (ok.code, ok.lines) == (0, ["Downgrade validate success, cluster version 3.5.0"])
    doc = json.loads((await cli("downgrade", "validate", "3.4", "-w", "json")).out)
    assert doc["version"] == "3.5.0" and doc["header"]["revision"] >= 1
    bad = await cli("downgrade", "validate", "3.6")
    assert bad.code != 0 and bad.out == b""
    assert bad.err == "Error: etcdserver: invalid downgrade target version\n"
    none = await cli("downgrade", "cancel")
    assert none.code != 0
    assert none.err == "Error: etcdserver: no inflight downgrade job\n"
    # etcd 3.5 applies an enable without answering (etcd-io/etcd#15878): the
    # command fails at its timeout, and the job is there afterwards.
    enabled = await cli("--command-timeout=1s", "downgrade", "enable", "3.4")
    assert enabled.code != 0 and "Error:" in enabled.err
    busy = await cli("downgrade", "validate", "3.4")
    assert busy.err == "Error: etcdserver: cluster has a downgrade job in progress\n"
    await cli("--command-timeout=1s", "downgrade", "cancel")
    assert (await cli("downgrade", "validate", "3.4")).code == 0
    usage = await cli("downgrade", "enable")
    assert usage.code != 0 and "version" in usage.err
