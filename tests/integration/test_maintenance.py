"""Maintenance RPCs against real etcd: status, alarms, defragment, hashes,
leadership transfer and snapshots."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import aetcd
from aetcd._pb import rpc_pb2
from aetcd.maintenance import SNAPSHOT_SHA_SIZE, SnapshotStream
from aetcd.testing import EtcdCluster, EtcdServer
from aetcd.testing.pytest_plugin import EtcdServerFactory
from aetcd.testing.server import find_etcd_binary

MiB = 1024 * 1024


@pytest.fixture
async def cluster_client(etcd_cluster: EtcdCluster) -> AsyncIterator[aetcd.Client]:
    async with aetcd.Client(etcd_cluster.endpoints) as client:
        yield client


# -- status -------------------------------------------------------------------


async def test_status_fields(etcd_client: aetcd.Client, etcd_server: EtcdServer) -> None:
    status = await etcd_client.status()
    assert re.fullmatch(r"3\.\d+\.\d+", status.version), status.version  # 3.5, or 3.4 (server34)
    assert status.leader != 0
    assert status.is_leader  # a one-member cluster leads itself
    assert status.member_id == status.header.member_id == await etcd_server.member_id()
    assert status.db_size > 0
    assert 0 < status.db_size_in_use <= status.db_size
    assert status.raft_term >= 1 and status.header.raft_term == status.raft_term
    assert status.raft_index > 0 and status.raft_applied_index > 0
    assert not status.is_learner
    assert status.errors == []
    with pytest.raises(AttributeError):
        status.leader = 0  # type: ignore[misc]
    # The explicit endpoint forms go over a private channel to that member.
    for endpoint in (etcd_server.endpoint, etcd_server.client_url):
        again = await etcd_client.status(endpoint)
        assert again.member_id == status.member_id


async def test_status_of_each_cluster_member(
    etcd_cluster: EtcdCluster, cluster_client: aetcd.Client
) -> None:
    leaders = set()
    for server in etcd_cluster.members:
        status = await cluster_client.status(endpoint=server.endpoint)
        assert status.header.member_id == await server.member_id()
        leaders.add(status.leader)
    assert len(leaders) == 1
    leader = await etcd_cluster.leader()
    assert leaders == {await leader.member_id()}


async def test_status_of_unreachable_endpoint_times_out(etcd_client: aetcd.Client) -> None:
    with pytest.raises(aetcd.DeadlineExceededError):
        await etcd_client.status("127.0.0.1:1", timeout=0.3)
    # The client itself is unaffected.
    assert (await etcd_client.status()).version.startswith("3.")


# -- hash_kv ------------------------------------------------------------------


async def _hash_on(client: aetcd.Client, revision: int, endpoint: str) -> aetcd.HashKVResult:
    # A follower may not have applied the revision yet: that is a future revision there.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            return await client.hash_kv(revision, endpoint=endpoint)
        except aetcd.FutureRevisionError:
            assert loop.time() < deadline, f"{endpoint} never reached revision {revision}"
            await asyncio.sleep(0.05)


async def test_hash_kv_is_equal_across_members(
    etcd_cluster: EtcdCluster, cluster_client: aetcd.Client
) -> None:
    for i in range(20):
        put = await cluster_client.put(f"hash/{i}", f"v{i}")
    revision = put.header.revision
    later = await cluster_client.put("hash/later", "changes the latest hash only")
    results = [await _hash_on(cluster_client, revision, ep) for ep in etcd_cluster.endpoints]
    assert len({r.hash for r in results}) == 1
    assert len({r.header.member_id for r in results}) == 3
    assert all(r.compact_revision == -1 for r in results)  # never compacted
    # At the later put's revision, not "latest": the member asked may be a
    # follower that has not applied it yet.
    latest = await _hash_on(cluster_client, later.header.revision, etcd_cluster.endpoints[0])
    assert latest.hash != results[0].hash

    await cluster_client.compact(revision)
    # Each member applies the compaction from its own raft log: the one asked
    # may apply it a moment after the call returned. Wait until it has.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            await cluster_client.hash_kv(revision - 1, endpoint=etcd_cluster.endpoints[0])
        except aetcd.CompactedError:
            break
        assert loop.time() < deadline, "the member never applied the compaction"
        await asyncio.sleep(0.05)
    with pytest.raises(aetcd.CompactedError):
        await cluster_client.hash_kv(revision - 1, endpoint=etcd_cluster.endpoints[0])
    # AT the compact revision: etcd 3.5.1 refuses to hash (though a Range there
    # works); later 3.5 releases hash it. Either way, never a hash of data
    # the compaction removed.
    try:
        at = await cluster_client.hash_kv(revision, endpoint=etcd_cluster.endpoints[0])
    except aetcd.CompactedError:
        pass
    else:
        assert at.hash == results[0].hash  # nothing at or below `revision` changed
    # Another member reports the compaction once it has applied it (it may lag).
    deadline = loop.time() + 10
    while True:
        after = await _hash_on(cluster_client, revision + 1, etcd_cluster.endpoints[1])
        if after.compact_revision == revision:
            break
        assert after.compact_revision == -1, after  # not yet applied there
        assert loop.time() < deadline, "the other member never applied the compaction"
        await asyncio.sleep(0.05)
    with pytest.raises(aetcd.FutureRevisionError):
        await cluster_client.hash_kv(revision + 1000)


# -- alarms, NOSPACE, defragment ------------------------------------------------


async def test_no_alarms_on_a_healthy_server(etcd_client: aetcd.Client) -> None:
    assert await etcd_client.alarms() == []


async def test_nospace_alarm_and_recovery(etcd_server_factory: EtcdServerFactory) -> None:
    server = await etcd_server_factory(extra_args=(f"--quota-backend-bytes={4 * MiB}",))
    async with aetcd.Client(server.endpoint) as client:
        value = b"x" * (256 * 1024)
        with pytest.raises(aetcd.NoSpaceError) as info:
            for _ in range(200):  # overwrite one key: every version is kept until compacted
                await client.put("big", value)
        assert info.value.message == "etcdserver: mvcc: database space exceeded"
        member_id = (await client.status()).member_id

        alarms = await client.alarms()
        assert alarms == [aetcd.Alarm(member_id, aetcd.AlarmType.NOSPACE)]
        assert alarms[0].alarm is aetcd.AlarmType.NOSPACE
        status = await client.status()
        assert any("NOSPACE" in error for error in status.errors), status.errors

        # Reads still work, writes do not (even small ones).
        got = await client.get("big")
        assert got.first is not None and got.first.value == value
        with pytest.raises(aetcd.NoSpaceError):
            await client.put("small", "v")

        # Free the space: compact away the old versions, defragment, disarm.
        await client.compact(got.header.revision, physical=True)
        before = (await client.status()).db_size
        await client.defragment(timeout=30)
        assert (await client.status()).db_size < before
        disarmed = await client.disarm_alarms()
        assert disarmed == alarms
        assert await client.alarms() == []
        assert await client.disarm_alarms() == []  # nothing left: a no-op
        await client.put("small", "v")
        assert (await client.status()).errors == []


async def test_disarm_one_alarm(etcd_server_factory: EtcdServerFactory) -> None:
    # Raise an alarm the way etcd does internally (ACTIVATE), then disarm just it.
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        member_id = (await client.status()).member_id
        t = client._t
        req = rpc_pb2.AlarmRequest(
            action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=member_id, alarm=rpc_pb2.NOSPACE
        )
        await t.unary(t.maintenance.Alarm, req, None, write=True)
        alarm = aetcd.Alarm(member_id, aetcd.AlarmType.NOSPACE)
        assert await client.alarms() == [alarm]
        # Disarming an alarm that is not raised changes nothing.
        assert await client.disarm_alarms(aetcd.Alarm(member_id, aetcd.AlarmType.CORRUPT)) == []
        assert await client.disarm_alarms(alarm) == [alarm]
        assert await client.alarms() == []


async def test_defragment_each_cluster_member(
    etcd_cluster: EtcdCluster, cluster_client: aetcd.Client
) -> None:
    for server in etcd_cluster.members:
        await cluster_client.defragment(endpoint=server.endpoint, timeout=30)
    await cluster_client.defragment(timeout=30)  # whichever member the channel picks
    await cluster_client.put("after-defrag", "v")


# -- move_leader ------------------------------------------------------------------


async def test_move_leader_to_a_follower(
    etcd_cluster: EtcdCluster, cluster_client: aetcd.Client
) -> None:
    old = await etcd_cluster.leader()
    old_id = await old.member_id()
    follower = next(m for m in etcd_cluster.members if m is not old)
    follower_id = await follower.member_id()

    # Only the leader accepts the request: a follower named explicitly refuses.
    with pytest.raises(aetcd.ClusterError) as info:
        await cluster_client.move_leader(old_id, endpoint=follower.endpoint)
    assert info.value.message == "etcdserver: not leader"

    await cluster_client.move_leader(follower_id, timeout=10)
    status = await cluster_client.status(endpoint=follower.endpoint)
    assert status.leader == follower_id and status.is_leader
    assert await (await etcd_cluster.leader()).member_id() == follower_id

    # Moving it to the member that leads already is a no-op; a bad target is refused.
    await cluster_client.move_leader(follower_id)
    with pytest.raises(aetcd.ClusterError) as bad:
        await cluster_client.move_leader(0x1234)
    assert bad.value.message == "etcdserver: bad leader transferee"
    await cluster_client.put("after-move", "v")


# -- snapshots ----------------------------------------------------------------------


async def test_snapshot_stream(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    for i in range(20):
        await etcd_client.put(f"{etcd_prefix}{i}", os.urandom(4096))
    chunks: list[bytes] = []
    async with etcd_client.snapshot() as stream:
        async for chunk in stream:
            assert isinstance(chunk, bytes) and chunk
            chunks.append(chunk)
    assert stream.verified
    data = b"".join(chunks)
    assert stream.bytes_received == len(data) > 20 * 4096
    # etcd appends the SHA-256 of the database as a last, separate message.
    assert chunks[-1] == hashlib.sha256(data[:-SNAPSHOT_SHA_SIZE]).digest()
    assert (len(data) - SNAPSHOT_SHA_SIZE) % 4096 == 0  # bbolt pages


async def test_snapshot_stop_early_and_cancel(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    await etcd_client.put(etcd_prefix + "k", b"v" * 100_000)
    stream = etcd_client.snapshot()
    async for _chunk in stream:
        break
    await stream.aclose()
    assert not stream.verified
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()

    started = asyncio.Event()

    async def slow_reader() -> None:
        async with etcd_client.snapshot() as s:
            async for _ in s:
                started.set()
                await asyncio.sleep(3600)

    task = asyncio.create_task(slow_reader())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await etcd_client.get(etcd_prefix + "k")).count == 1


def _snapshot_rpcs_handled(server: EtcdServer) -> dict[str, int]:
    """The server's count of finished Snapshot RPCs, by gRPC code."""
    with urllib.request.urlopen(f"{server.client_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and 'grpc_method="Snapshot"' in line:
            code = line.split('grpc_code="', 1)[1].split('"', 1)[0]
            counts[code] = int(float(line.rsplit(" ", 1)[1]))
    return {code: n for code, n in counts.items() if n}


async def test_snapshot_close_cancels_the_rpc_on_the_server(
    etcd_server_factory: EtcdServerFactory,
) -> None:
    server = await etcd_server_factory()
    async with aetcd.Client(server.endpoint) as client:
        for i in range(16):
            await client.put(f"k{i}", os.urandom(512 * 1024))
        async with client.snapshot() as stream:  # on the client's own, still open, channel
            async for _chunk in stream:
                break  # 8 MiB left unsent
        for _ in range(50):
            handled = await asyncio.to_thread(_snapshot_rpcs_handled, server)
            if handled:
                break
            await asyncio.sleep(0.1)
        # The server's send failed (etcd reports it as Unknown): it did not finish.
        assert sum(handled.values()) == 1 and "OK" not in handled, handled
        assert stream.bytes_received < 8 * MiB


async def _etcdutl_status(path: Path) -> dict[str, Any]:
    etcdutl = Path(find_etcd_binary()).with_name("etcdutl")
    proc = await asyncio.create_subprocess_exec(
        str(etcdutl),
        "snapshot",
        "status",
        str(path),
        "--write-out=json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_save_snapshot(etcd_client: aetcd.Client, etcd_prefix: str, tmp_path: Path) -> None:
    put = await etcd_client.put(etcd_prefix + "k", "v")
    path = tmp_path / "backup.db"
    path.write_bytes(b"old contents are replaced atomically")
    size = await etcd_client.save_snapshot(path)
    assert size == path.stat().st_size > 0
    assert (path.stat().st_mode & 0o777) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["backup.db"]  # no temp file left behind
    data = path.read_bytes()
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    status = await _etcdutl_status(path)
    assert status["revision"] >= put.header.revision
    assert status["totalKey"] >= 1


async def test_save_snapshot_of_one_cluster_member(
    etcd_cluster: EtcdCluster, cluster_client: aetcd.Client, tmp_path: Path
) -> None:
    put = await cluster_client.put("snap", "v")
    server = etcd_cluster.members[2]
    # The put is committed once a quorum has it; member 2 may apply it later.
    # Wait until it has, so its snapshot must contain the put.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (await cluster_client.status(server.endpoint)).header.revision < put.header.revision:
        assert loop.time() < deadline, "member 2 never applied the put"
        await asyncio.sleep(0.02)
    path = tmp_path / "m2.db"
    assert await cluster_client.save_snapshot(str(path), endpoint=server.endpoint) > 0
    assert (await _etcdutl_status(path))["revision"] >= put.header.revision


async def test_save_snapshot_failure_leaves_nothing(
    etcd_client: aetcd.Client, tmp_path: Path
) -> None:
    path = tmp_path / "never.db"
    with pytest.raises(aetcd.DeadlineExceededError):
        await etcd_client.save_snapshot(path, endpoint="127.0.0.1:1", timeout=0.3)
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        await etcd_client.save_snapshot(tmp_path / "missing-dir" / "x.db")

    # Cancelled midway: the temp file goes too, and the old file stays.
    path.write_bytes(b"old")
    task = asyncio.create_task(etcd_client.save_snapshot(path))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert os.listdir(tmp_path) == ["never.db"]
    assert path.read_bytes() == b"old"


class _FakeCall:
    """Stands in for a Snapshot call, replaying canned responses."""

    def __init__(self, responses: list[rpc_pb2.SnapshotResponse]) -> None:
        self._responses = list(responses)
        self.cancelled = False

    async def read(self) -> Any:
        if self._responses:
            return self._responses.pop(0)
        return grpc.aio.EOF

    def cancel(self) -> bool:
        self.cancelled = True
        return True


async def _drain_fake(responses: list[rpc_pb2.SnapshotResponse]) -> SnapshotStream:
    client = aetcd.Client("127.0.0.1:1")
    stream = client.snapshot()
    stream._call = _FakeCall(responses)
    try:
        async for _ in stream:
            pass
    finally:
        await client.close()
    return stream


async def test_snapshot_checksum_is_verified() -> None:
    db = os.urandom(8192)
    good = [
        rpc_pb2.SnapshotResponse(blob=db[:5000], remaining_bytes=3192),
        rpc_pb2.SnapshotResponse(blob=db[5000:], remaining_bytes=0),
        rpc_pb2.SnapshotResponse(blob=hashlib.sha256(db).digest(), remaining_bytes=0),
    ]
    assert (await _drain_fake(good)).verified

    bad = [*good[:2], rpc_pb2.SnapshotResponse(blob=b"\0" * 32, remaining_bytes=0)]
    with pytest.raises(aetcd.CorruptError, match="checksum mismatch"):
        await _drain_fake(bad)
    truncated = [rpc_pb2.SnapshotResponse(blob=db[:5000], remaining_bytes=3192)]
    with pytest.raises(aetcd.CorruptError, match="ended early"):
        await _drain_fake(truncated)


async def test_bad_input_fails_before_io() -> None:
    client = aetcd.Client("127.0.0.1:1", timeout=30)
    try:
        cases: list[tuple[Any, type[Exception]]] = [
            (lambda: client.status("not an endpoint"), aetcd.InvalidArgumentError),
            (lambda: client.status(2379), TypeError),
            (lambda: client.defragment("ftp://h:1"), aetcd.InvalidArgumentError),
            (lambda: client.hash_kv(-1), aetcd.InvalidArgumentError),
            (lambda: client.hash_kv(True), TypeError),
            (lambda: client.move_leader(0), aetcd.InvalidArgumentError),
            (lambda: client.move_leader(False), TypeError),
            (lambda: client.disarm_alarms("NOSPACE"), TypeError),
            (lambda: client.save_snapshot(None), TypeError),
        ]
        for call, error in cases:
            with pytest.raises(error):
                await call()
        with pytest.raises(TypeError):
            client.snapshot(verify=1)  # type: ignore[arg-type]
        with pytest.raises(aetcd.InvalidArgumentError):
            client.snapshot(timeout=0)
        assert client._t.state.value == "unopened"
    finally:
        await client.close()
