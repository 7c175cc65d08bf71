"""Fixtures of the blocking-client tests: a ``sync_client`` on the shared etcd."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aetcd import sync


@pytest.fixture
def sync_client(etcd_server: Any) -> Iterator[sync.Client]:
    """An ``aetcd.sync.Client`` for ``etcd_server``, closed after the test."""
    with sync.Client(etcd_server.endpoint) as client:
        yield client
