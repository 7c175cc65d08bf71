"""pytest fixtures running tests against a real etcd.

Loaded automatically through the ``pytest11`` entry point once aetcd is installed
(or explicitly with ``-p aetcd.testing.pytest_plugin``; disable with ``-p no:aetcd``).

Fixtures:

``etcd_server`` (session)
    One :class:`~aetcd.testing.EtcdServer` shared by every test, or an
    :class:`~aetcd.testing.ExternalEtcd` when ``--etcd-endpoint HOST:PORT`` or
    ``$AETCD_TEST_ENDPOINT`` names an existing etcd. It is a *sync* fixture that starts
    etcd with ``EtcdServer.start_sync()``: launchers manage plain subprocesses and run
    their async work on a private loop in a helper thread, so the server belongs to no
    event loop and works from function-scoped test loops, a session loop or sync tests
    alike. Shared means: isolate by :func:`etcd_prefix` and never kill, pause or wipe it.
``etcd_server_factory`` (function)
    ``await etcd_server_factory(**EtcdServer options)`` starts a private server that the
    test may crash, pause or restart; all of them are closed after the test.
``etcd_cluster`` (function)
    A started 3-member :class:`~aetcd.testing.EtcdCluster`, killed after the test.
``etcd_prefix`` (function)
    A unique key prefix such as ``"t/test_put-1a2b3c4d/"``.
``etcd_client`` (function, needs pytest-asyncio)
    An open ``aetcd.Client`` connected to ``etcd_server``, closed after the test.
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from .cluster import EtcdCluster
from .server import EtcdServer, ExternalEtcd

try:
    import pytest_asyncio
except ImportError:  # the plugin must load for every pytest run, even without it
    _HAVE_PYTEST_ASYNCIO = False
else:
    _HAVE_PYTEST_ASYNCIO = True

ENDPOINT_ENV = "AETCD_TEST_ENDPOINT"
"""Environment variable naming an existing etcd to use instead of launching one."""

EtcdServerFactory = Callable[..., Awaitable[EtcdServer]]
"""Type of the ``etcd_server_factory`` fixture: ``await factory(**EtcdServer options)``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--etcd-endpoint``."""
    group = parser.getgroup("aetcd", "aetcd etcd fixtures")
    group.addoption(
        "--etcd-endpoint",
        dest="aetcd_etcd_endpoint",
        default=None,
        metavar="HOST:PORT",
        help=(
            "run tests using the shared etcd_server fixture against this existing etcd "
            f"instead of launching one (default: ${ENDPOINT_ENV})"
        ),
    )


def _external_endpoint(config: pytest.Config) -> str | None:
    value = config.getoption("aetcd_etcd_endpoint", None) or os.environ.get(ENDPOINT_ENV)
    if not value:
        return None
    value = value.strip().removesuffix("/")
    for scheme in ("http://", "https://"):
        value = value.removeprefix(scheme)
    return value


@pytest.fixture(scope="session")
def etcd_server(request: pytest.FixtureRequest) -> Iterator[EtcdServer | ExternalEtcd]:
    """One etcd for the whole session (or the ``--etcd-endpoint`` one); see module doc."""
    endpoint = _external_endpoint(request.config)
    if endpoint is not None:
        yield ExternalEtcd(endpoint)
        return
    with EtcdServer(name="aetcd-session") as server:
        yield server


@pytest.fixture
def etcd_server_factory() -> Iterator[EtcdServerFactory]:
    """Start private servers with ``await factory(**options)``; closes them after the test."""
    servers: list[EtcdServer] = []

    async def make(**options: Any) -> EtcdServer:
        server = EtcdServer(**options)
        servers.append(server)
        await server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.close_sync()


@pytest.fixture
def etcd_cluster() -> Iterator[EtcdCluster]:
    """A started 3-member cluster, private to the test and killed afterwards."""
    with EtcdCluster(size=3) as cluster:
        yield cluster


@pytest.fixture
def etcd_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix unique to this test, e.g. ``"t/test_put_a-1a2b3c4d/"``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")[:80] or "test"
    return f"t/{name}-{secrets.token_hex(4)}/"


if _HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def etcd_client(etcd_server: EtcdServer | ExternalEtcd) -> AsyncIterator[Any]:
        """An open ``aetcd.Client`` for ``etcd_server``, closed after the test."""
        # Imported late so this plugin loads even while aetcd's client is broken or absent.
        client_cls = importlib.import_module("aetcd").Client
        async with client_cls(etcd_server.endpoint) as client:
            yield client

else:

    @pytest.fixture(name="etcd_client")
    def _etcd_client_unavailable() -> None:
        """Stand-in that explains why ``etcd_client`` cannot be used."""
        pytest.fail("the etcd_client fixture needs pytest-asyncio (pip install pytest-asyncio)")
