"""The async client's auth behaviour tests (``tests/integration/test_auth.py``),
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
import test_auth
from test_auth import *  # noqa: F403

sync_aetcd = share(test_auth)

_ASYNC_ONLY = {
    # holds the async client's token lock from the test's loop, not the client's
    "test_token_refresh_stays_within_the_calls_deadline": "internals",
}
for _name in _ASYNC_ONLY:
    del globals()[_name]


@pytest.fixture
def etcd_client(etcd_server: Any) -> Iterator[AsyncFacade]:
    with sync.Client(etcd_server.endpoint) as client:
        yield AsyncFacade(client)
