"""The async recipes' behaviour tests, run on the blocking client (see ``test_sync_shared.py``).

The lock, election, heartbeat, STM and contrib tests cancel tasks or build async
recipe objects directly, so they cannot run through the facade; their blocking
forms are tested in ``test_sync_recipes.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncfacade import AsyncFacade

from aetcd import sync

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
from recipe_helpers import spawn  # noqa: F401  (a fixture)
from test_config import *  # noqa: F403
from test_discovery import *  # noqa: F403

# Left out: they build async recipe objects around the client directly.
_ASYNC_ONLY = {
    "test_register_discover_go_layout_and_foreign_values",
    "test_dead_registrant_disappears_and_revoked_one_comes_back",
}
for _name in _ASYNC_ONLY:
    del globals()[_name]


@pytest.fixture
def etcd_client(etcd_server: Any) -> Iterator[AsyncFacade]:
    with sync.Client(etcd_server.endpoint) as client:
        yield AsyncFacade(client)
