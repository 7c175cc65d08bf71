"""Client.downgrade against a real etcd 3.5: what it answers to VALIDATE, ENABLE
and CANCEL, and to bad targets. Downgrades are cluster-wide state, so every test
uses a private server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

import aetcd
from aetcd import DowngradeAction
from aetcd.testing.pytest_plugin import EtcdServerFactory

V, E, C = DowngradeAction.VALIDATE, DowngradeAction.ENABLE, DowngradeAction.CANCEL
IN_PROGRESS = "etcdserver: cluster has a downgrade job in progress"
NO_JOB = "etcdserver: no inflight downgrade job"


@pytest.fixture
async def client(etcd_server_factory: EtcdServerFactory) -> AsyncIterator[aetcd.Client]:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as c:
        yield c


async def test_validate(client: aetcd.Client) -> None:
    status = await client.status()
    ok = await client.downgrade(V, "3.4")
    assert isinstance(ok, aetcd.DowngradeResult)
    assert ok.version == "3.5.0"  # the cluster version
    assert ok.header.member_id == status.member_id
    assert (await client.downgrade("validate", "3.4.0")).version == "3.5.0"
    for target in ("3.5", "3.6", "3.3"):
        with pytest.raises(aetcd.InvalidArgumentError) as bad:
            await client.downgrade(V, target)
        assert bad.value.message == "etcdserver: invalid downgrade target version"
        assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(aetcd.InvalidArgumentError) as garbled:
        await client.downgrade(V, "v3.4")
    assert garbled.value.message == "etcdserver: wrong downgrade target version format"
    assert garbled.value.detail is None  # the server's answer


async def test_cancel_without_a_job(client: aetcd.Client) -> None:
    with pytest.raises(aetcd.ClusterError) as info:
        await client.downgrade(DowngradeAction.CANCEL)
    assert info.value.message == NO_JOB
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert not isinstance(info.value, aetcd.OutcomeUnknownError)


async def test_enable_then_cancel(client: aetcd.Client) -> None:
    # etcd 3.5 applies ENABLE and CANCEL but never answers them (etcd-io/etcd#15878).
    answers = not (await client.status()).version.startswith("3.5.")

    async def write(action: DowngradeAction, *version: str) -> None:
        if answers:
            result = await client.downgrade(action, *version)
            assert result.version
            return
        with pytest.raises(aetcd.OutcomeUnknownError):
            await client.downgrade(action, *version, timeout=1.0)

    await write(E, "3.4")
    for action in (V, E):  # now a job is in progress, and etcd says so
        with pytest.raises(aetcd.ClusterError) as busy:
            await client.downgrade(action, "3.4")
        assert busy.value.message == IN_PROGRESS
    await write(C)
    with pytest.raises(aetcd.ClusterError) as done:
        await client.downgrade(C)
    assert done.value.message == NO_JOB
    assert (await client.downgrade(V, "3.4")).version == "3.5.0"


async def test_bad_input_before_any_io() -> None:
    client = aetcd.Client("127.0.0.1:1")  # nothing listens: any I/O would fail differently
    with pytest.raises(TypeError):
        await client.downgrade(7, "3.4")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.downgrade("rollback", "3.4")
    with pytest.raises(TypeError):
        await client.downgrade(V)  # no version
    with pytest.raises(aetcd.InvalidArgumentError):
        await client.downgrade(C, "3.4")
    with pytest.raises(aetcd.InvalidArgumentError) as empty:
        await client.downgrade(E, "")
    assert empty.value.message == "etcdserver: wrong downgrade target version format"
    assert empty.value.detail == "a downgrade ENABLE needs a target version"
    await client.close()
