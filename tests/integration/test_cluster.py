"""Cluster membership against a real 3-member etcd cluster."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

import aetcd
from aetcd.testing import EtcdCluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def cluster_client(etcd_cluster: EtcdCluster) -> AsyncIterator[aetcd.Client]:
    async with aetcd.Client(etcd_cluster.endpoints) as client:
        yield client


async def test_members_lists_every_member(
    etcd_cluster: EtcdCluster, cluster_client: aetcd.Client
) -> None:
    members = await cluster_client.members()
    assert sorted(m.name for m in members) == ["m0", "m1", "m2"]
    by_name = {m.name: m for m in members}
    for server in etcd_cluster.members:
        member = by_name[server.name]
        assert member.peer_urls == [server.peer_url]
        assert member.client_urls == [server.client_url]
        assert not member.is_learner
        assert member.started
        assert member.id == await server.member_id()
    linearizable = await cluster_client.members(linearizable=True)
    assert sorted(m.id for m in linearizable) == sorted(m.id for m in members)
    with pytest.raises(AttributeError):
        members[0].name = "x"  # type: ignore[misc]


async def _add_when_healthy(client: aetcd.Client, url: str) -> aetcd.Member:
    # etcd refuses membership changes ("unhealthy cluster", provably not applied)
    # until the member has been connected to all peers for 5 s: a fresh cluster
    # must wait.
    #
    # On a loaded machine the add may also end in "etcdserver: request timed out"
    # (raft drops a configuration change proposed while a leader change or an
    # earlier one is still being applied, and etcd then waits out the deadline).
    # That outcome is unknown, so do what a user must: re-read the membership and
    # add again only if the member is not there.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            return await client.member_add([url], learner=True)
        except aetcd.OutcomeUnknownError as exc:
            assert exc.message == "etcdserver: request timed out", exc
            if loop.time() > deadline:
                raise
            present = [
                m for m in await client.members(linearizable=True) if m.peer_urls == [url]
            ]
            if present:
                return present[0]
        except aetcd.UnavailableError as exc:
            assert exc.message == "etcdserver: unhealthy cluster"
            assert exc.retryable
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_learner_add_update_promote_remove(cluster_client: aetcd.Client) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    added = await _add_when_healthy(cluster_client, url)
    assert added.id != 0
    assert added.is_learner
    assert added.peer_urls == [url]
    assert added.name == "" and added.client_urls == [] and not added.started
    assert added.id in {m.id for m in await cluster_client.members(linearizable=True)}

    # Never started, so never in sync: etcd refuses to promote it.
    with pytest.raises(aetcd.ClusterError) as info:
        await cluster_client.member_promote(added.id)
    assert info.value.message == (
        "etcdserver: can only promote a learner member which is in sync with leader"
    )

    # The same peer URL cannot be added twice. etcd derives a new member's id from
    # its peer URLs and the current Unix second, so within the same second the id
    # check fires before the URL check.
    with pytest.raises(aetcd.ClusterError) as dup:
        await cluster_client.member_add(url)
    assert dup.value.message in {
        "etcdserver: Peer URLs already exists",
        "etcdserver: member ID already exist",
    }

    new_url = f"http://127.0.0.1:{_free_port()}"
    after = await cluster_client.member_update(added.id, [new_url])
    assert next(m for m in after if m.id == added.id).peer_urls == [new_url]
    listed = {m.id: m for m in await cluster_client.members(linearizable=True)}
    assert listed[added.id].peer_urls == [new_url]

    left = await cluster_client.member_remove(added.id)
    assert added.id not in {m.id for m in left}
    assert len(left) == 3
    assert added.id not in {m.id for m in await cluster_client.members(linearizable=True)}


async def test_unknown_member_is_a_cluster_error(cluster_client: aetcd.Client) -> None:
    unknown = 0x1234  # raft ids are random 64-bit numbers: this one is not in use
    for call in (
        cluster_client.member_remove(unknown),
        cluster_client.member_promote(unknown),
        cluster_client.member_update(unknown, "http://127.0.0.1:1"),
    ):
        with pytest.raises(aetcd.ClusterError) as info:
            await call
        assert info.value.message == "etcdserver: member not found"
        assert not info.value.retryable


async def test_promote_voting_member_is_refused(cluster_client: aetcd.Client) -> None:
    voter = (await cluster_client.members())[0]
    with pytest.raises(aetcd.ClusterError) as info:
        await cluster_client.member_promote(voter.id)
    assert info.value.message == "etcdserver: can only promote a learner member"


async def test_bad_input_fails_before_io() -> None:
    # Nothing listens on this endpoint: any I/O would time out instead of failing fast.
    client = aetcd.Client("127.0.0.1:1", timeout=30)
    try:
        cases = [
            (lambda: client.member_add([]), aetcd.InvalidArgumentError),
            (lambda: client.member_add(b"http://127.0.0.1:2380"), TypeError),  # type: ignore[arg-type]
            (lambda: client.member_add([1]), TypeError),  # type: ignore[list-item]
            (lambda: client.member_add(["127.0.0.1:2380"]), aetcd.InvalidArgumentError),
            (lambda: client.member_add(["ftp://127.0.0.1:2380"]), aetcd.InvalidArgumentError),
            (lambda: client.member_add(["http://127.0.0.1"]), aetcd.InvalidArgumentError),
            (lambda: client.member_add(["http://127.0.0.1:99999"]), aetcd.InvalidArgumentError),
            (lambda: client.member_add("http://h:1", learner=1), TypeError),  # type: ignore[arg-type]
            (lambda: client.member_remove(True), TypeError),
            (lambda: client.member_remove("1"), TypeError),  # type: ignore[arg-type]
            (lambda: client.member_remove(0), aetcd.InvalidArgumentError),
            (lambda: client.member_remove(-1), aetcd.InvalidArgumentError),
            (lambda: client.member_remove(2**64), aetcd.InvalidArgumentError),
            (lambda: client.member_promote(1.0), TypeError),  # type: ignore[arg-type]
            (lambda: client.member_update(1, []), aetcd.InvalidArgumentError),
            (lambda: client.member_update(False, ["http://h:1"]), TypeError),
            (lambda: client.members(linearizable=1), TypeError),  # type: ignore[arg-type]
        ]
        for call, error in cases:
            with pytest.raises(error):
                await call()
        assert client._t.state.value == "unopened"
    finally:
        await client.close()


async def test_uint64_member_ids_are_accepted_locally(cluster_client: aetcd.Client) -> None:
    # Raft ids use all 64 bits; ids above 2**63 must reach the server.
    with pytest.raises(aetcd.ClusterError, match="member not found"):
        await cluster_client.member_remove(2**64 - 1)
