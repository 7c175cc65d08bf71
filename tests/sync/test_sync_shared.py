"""The async client's behaviour tests, run on the blocking client.

The test bodies are imported from ``tests/integration`` and ``tests/recipes``;
the ``etcd_client`` fixture here hands them an :class:`AsyncFacade` whose every
call goes through an ``aetcd.sync.Client``, from a worker thread. Tests that
reach into the async client's internals, or cancel an awaiting task (a thread
blocked in a call cannot be cancelled that way; interruption is covered by
``test_sync_client.py``), are left out by name below.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncfacade import AsyncFacade

from aetcd import sync

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_kv import *  # noqa: F403
from test_lease import *  # noqa: F403
from test_txn import *  # noqa: F403
from test_watch import *  # noqa: F403

# Left out: they inspect the async client's internals (its transport, keep-alive
# manager or watch stream), its exact handle types, or handle identity.
_ASYNC_ONLY = {
    "test_put_with_lease_id",
    "test_grant_time_to_live_leases_revoke",
    "test_lease_context_keeps_alive_then_revokes",
    "test_leases_share_one_stream",
    "test_keeper_idles_and_restarts",
    "test_leases_of_one_ttl_are_renewed_together",
    "test_short_ttl_renewed_in_time_next_to_long_ones",
    "test_a_burst_of_leases_shares_one_stream",
    "test_keepalive_by_id_renews_and_does_not_revoke",
    "test_keepalive_of_a_granted_handle_and_sharing",
    "test_keepalive_of_an_unknown_lease",
    "test_one_stream_for_many_watches",
    # Its callback feeds an asyncio.Queue, but a blocking lease calls back from the
    # client's loop thread; test_sync_client.py covers on_renewed with a thread-safe queue.
    "test_on_renewed_reports_each_renewal",
}
for _name in _ASYNC_ONLY:
    del globals()[_name]


@pytest.fixture
def etcd_client(etcd_server: Any) -> Iterator[AsyncFacade]:
    with sync.Client(etcd_server.endpoint) as client:
        yield AsyncFacade(client)
