"""python-etcd3 main's ``MultiEndpointEtcd3Client`` and ``Endpoint`` on aetcd's failover."""

from __future__ import annotations

import time

import pytest

import aetcd
from aetcd import sync
from aetcd.compat import etcd3
from aetcd.testing import EtcdCluster

TIMEOUT = 3.0


def _endpoints(cluster: EtcdCluster) -> list[etcd3.Endpoint]:
    out = []
    for ep in cluster.endpoints:
        host, port = ep.rsplit(":", 1)
        out.append(etcd3.Endpoint(host, int(port), secure=False))
    return out


def test_endpoint_and_client_arguments_are_checked_before_io() -> None:
    with pytest.raises(ValueError, match="TLS credentials"):
        etcd3.Endpoint("127.0.0.1", 1)  # secure by default, as in python-etcd3
    with pytest.raises(TypeError, match=r"aetcd\.TLS"):
        etcd3.Endpoint("127.0.0.1", 1, creds=object())  # type: ignore[arg-type]
    creds = etcd3.MultiEndpointEtcd3Client.get_secure_creds("/nonexistent/ca.pem")
    assert isinstance(creds, aetcd.TLS)
    secure = etcd3.Endpoint("127.0.0.1", 1, creds=creds)
    assert str(secure) == "Endpoint(https://127.0.0.1:1)" and secure.url.startswith("https://")
    plain = etcd3.Endpoint("127.0.0.1", 2, secure=False)
    with pytest.raises(ValueError, match="same creds"):
        etcd3.MultiEndpointEtcd3Client(endpoints=[secure, plain])
    with pytest.raises(ValueError, match="Endpoint"):
        etcd3.MultiEndpointEtcd3Client(endpoints=[])
    with pytest.raises(Exception, match="both user and password"):
        etcd3.MultiEndpointEtcd3Client(endpoints=[plain], user="alice")


@pytest.mark.timeout(120)
def test_failover_when_the_member_in_use_stops(etcd_cluster: EtcdCluster) -> None:
    """Stop the member that answers: calls go on against the other two."""
    with etcd3.MultiEndpointEtcd3Client(
        endpoints=_endpoints(etcd_cluster), timeout=TIMEOUT, failover=True
    ) as client:
        assert client.failover and len(client.endpoints) == 3
        assert client.endpoint_in_use.netloc in client.endpoints
        client.put("mf/k", "0")
        answering = client.aetcd_client.status().header.member_id
        with sync.Client(etcd_cluster.endpoints) as probe:
            ids = {
                m.endpoint: probe.status(m.endpoint).header.member_id for m in etcd_cluster.members
            }
        victim = next(m for m in etcd_cluster.members if ids[m.endpoint] == answering)
        victim.kill()
        # If it led the cluster, writes wait for a new leader: python-etcd3's contract is
        # that the application retries a failed call; after that every call works.
        deadline = time.monotonic() + 15
        while True:
            try:
                client.put("mf/k", "0")
                break
            except (
                etcd3.exceptions.ConnectionFailedError,
                etcd3.exceptions.ConnectionTimeoutError,
            ):
                assert time.monotonic() < deadline, "no write within 15 s of the stop"
        for i in range(1, 20):
            client.put("mf/k", str(i))
            assert client.get("mf/k")[0] == str(i).encode()
        assert client.aetcd_client.status().header.member_id != answering


def test_without_failover_one_endpoint_is_used(etcd_cluster: EtcdCluster) -> None:
    with etcd3.MultiEndpointEtcd3Client(
        endpoints=_endpoints(etcd_cluster), timeout=TIMEOUT
    ) as client:
        assert not client.failover
        assert client.aetcd_client.endpoints == [client.endpoint_in_use.netloc]
        client.put("mf/one", "v")
        assert client.get("mf/one")[0] == b"v"
