"""The async client's maintenance behaviour tests (``tests/integration/test_maintenance.py``),
run on the blocking client: every ``aetcd.Client(...)`` they build, and the
``etcd_client`` fixture, is an :class:`AsyncFacade` over an ``aetcd.sync.Client``
(see ``test_sync_shared.py``). Left out by name: tests that reach into the async
client's internals or cancel an awaiting task.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncfacade import AsyncFacade, share

from aetcd import sync

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import test_maintenance
from test_maintenance import *  # noqa: F403

sync_aetcd = share(test_maintenance)

_ASYNC_ONLY = {
    # drives the async client's transport (client._t.unary) on the test's own loop
    "test_disarm_one_alarm": "internals",
    # swaps a fake gRPC call into the async snapshot stream
    "test_snapshot_checksum_is_verified": "internals",
    # cancel an awaiting task: a thread blocked in a call cannot be cancelled that way
    # (interruption is covered by test_sync_client.py)
    "test_snapshot_stop_early_and_cancel": "cancels a task",
    "test_save_snapshot_failure_leaves_nothing": "cancels a task",
}
for _name in _ASYNC_ONLY:
    del globals()[_name]


@pytest.fixture
def etcd_client(etcd_server: Any) -> Iterator[AsyncFacade]:
    with sync.Client(etcd_server.endpoint) as client:
        yield AsyncFacade(client)
