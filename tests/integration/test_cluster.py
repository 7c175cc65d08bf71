"""Cluster membership against a real 3-member etcd cluster."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

import aetcd
from aetcd.testing import EtcdCluster

T = TypeVar("T")


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


async def _membership_change(
    call: Callable[[], Awaitable[T]],
    applied: Callable[[], Awaitable[T | None]] | None = None,
) -> T:
    """``await call()``, again while etcd could not finish the change in time.

    Every membership call is a raft configuration change. etcd refuses one
    ("unhealthy cluster", provably not applied) until the member has been
    connected to its peers for 5 s, so a fresh cluster must wait. On a loaded
    machine a change may also end in "etcdserver: request timed out" (or the
    call's own deadline): raft drops a configuration change proposed while a
    leader change or an earlier one is still being applied, and etcd waits out
    the deadline. That outcome is unknown, so do what a user must: re-read the
    membership (*applied*: the result if the change is in, else None) and
    change it again only if it is not in. A call expected to be refused
    (ClusterError) has nothing to re-read: it is simply made again.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    unknown = False  # an earlier attempt may have been applied
    while True:
        try:
            return await call()
        except aetcd.OutcomeUnknownError as exc:
            timed_out = isinstance(exc, aetcd.OutcomeUnknownTimeoutError)
            assert timed_out or exc.message.startswith("etcdserver: request timed out"), exc
            if loop.time() > deadline:
                raise
            unknown = True
        except aetcd.ClusterError:
            # Refused: if an earlier attempt timed out and was applied after all,
            # this one is refused because the change is already in.
            if not (unknown and applied is not None):
                raise
            done = await applied()
            if done is None:
                raise
            return done
        except aetcd.UnavailableError as exc:
            assert exc.message == "etcdserver: unhealthy cluster", exc
            assert exc.retryable
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        if applied is not None:
            done = await applied()
            if done is not None:
                return done


async def _add_when_healthy(client: aetcd.Client, url: str) -> aetcd.Member:
    async def present() -> aetcd.Member | None:
        members = await client.members(linearizable=True)
        return next((m for m in members if m.peer_urls == [url]), None)

    return await _membership_change(lambda: client.member_add([url], learner=True), present)


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
        await _membership_change(lambda: cluster_client.member_promote(added.id))
    assert info.value.message == (
        "etcdserver: can only promote a learner member which is in sync with leader"
    )

    # The same peer URL cannot be added twice. etcd derives a new member's id from
    # its peer URLs and the current Unix second, so within the same second the id
    # check fires before the URL check.
    with pytest.raises(aetcd.ClusterError) as dup:
        await _membership_change(lambda: cluster_client.member_add(url))
    assert dup.value.message in {
        "etcdserver: Peer URLs already exists",
        "etcdserver: member ID already exist",
    }

    new_url = f"http://127.0.0.1:{_free_port()}"

    async def updated() -> list[aetcd.Member] | None:
        members = await cluster_client.members(linearizable=True)
        done = any(m.id == added.id and m.peer_urls == [new_url] for m in members)
        return members if done else None

    after = await _membership_change(
        lambda: cluster_client.member_update(added.id, [new_url]), updated
    )
    assert next(m for m in after if m.id == added.id).peer_urls == [new_url]
    listed = {m.id: m for m in await cluster_client.members(linearizable=True)}
    assert listed[added.id].peer_urls == [new_url]

    async def removed() -> list[aetcd.Member] | None:
        members = await cluster_client.members(linearizable=True)
        return None if added.id in {m.id for m in members} else members

    left = await _membership_change(lambda: cluster_client.member_remove(added.id), removed)
    assert added.id not in {m.id for m in left}
    assert len(left) == 3
    assert added.id not in {m.id for m in await cluster_client.members(linearizable=True)}


async def test_unknown_member_is_a_cluster_error(cluster_client: aetcd.Client) -> None:
    unknown = 0x1234  # raft ids are random 64-bit numbers: this one is not in use
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: cluster_client.member_remove(unknown),
        lambda: cluster_client.member_promote(unknown),
        lambda: cluster_client.member_update(unknown, "http://127.0.0.1:1"),
    ]
    for call in calls:
        with pytest.raises(aetcd.ClusterError) as info:
            await _membership_change(call)
        assert info.value.message == "etcdserver: member not found"
        assert not info.value.retryable


async def test_promote_voting_member_is_refused(cluster_client: aetcd.Client) -> None:
    voter = (await cluster_client.members())[0]
    with pytest.raises(aetcd.ClusterError) as info:
        await _membership_change(lambda: cluster_client.member_promote(voter.id))
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
        await _membership_change(lambda: cluster_client.member_remove(2**64 - 1))
