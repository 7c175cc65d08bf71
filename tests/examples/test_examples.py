"""Every script in examples/ runs as a user would run it, against a real etcd.

Each example is started as ``python examples/<name>.py --endpoint <etcd>`` on
the shared ``etcd_server`` (examples only touch keys under
``examples/<name>/`` and remove them at the end), with small ``--rounds`` /
``--ttl``; one also runs with ``--embedded`` (it starts its own etcd). All of
them start together and each test checks the output of one, so the module
takes as long as the slowest example (a few seconds).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import aetcd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py"))


# How each example is run: the shared etcd's endpoint is appended unless --embedded.
ARGS = {
    "config_centre": ["--rounds", "2"],
    "distributed_lock": ["--workers", "3", "--rounds", "2"],
    "heartbeat": ["--ttl", "2"],
    "leader_election": ["--ttl", "2"],
    "service_discovery": ["--rounds", "3"],
    "service_discovery --embedded": ["--embedded", "--rounds", "3"],
    "sync_worker": ["--workers", "3"],
}


@pytest.fixture(scope="module")
def runs(etcd_server: object) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Start every example at once (they use separate key prefixes): the module
    then takes as long as the slowest one, not the sum."""
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for run, args in ARGS.items():
            name = run.split()[0]
            if "--embedded" not in args:
                args = [*args, "--endpoint", endpoint]
            procs[run] = subprocess.Popen(
                [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def output(runs: dict[str, subprocess.Popen[str]], run: str, timeout: float = 60) -> str:
    """Wait for one example to finish; returns its stdout (fails on a non-zero exit)."""
    proc = runs[run]
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{run} exited {proc.returncode}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert stdout.rstrip().endswith("done"), stdout
    return stdout


async def assert_cleaned_up(endpoint: str, name: str) -> None:
    async with aetcd.Client(endpoint) as client:
        left = await client.get(f"examples/{name}/", prefix=True, count_only=True)
    assert left.count == 0, f"{name} left {left.count} keys behind"


def test_the_seed_use_cases_have_examples() -> None:
    assert {
        "config_centre",
        "distributed_lock",
        "heartbeat",
        "leader_election",
        "service_discovery",
    } <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_explains_itself(name: str) -> None:
    source = (EXAMPLES / f"{name}.py").read_text()
    doc = ast.get_docstring(ast.parse(source))
    assert doc and len(doc.split()) > 40, "each example opens with a docstring saying what it shows"
    for option in ("--endpoint", "--embedded"):
        assert option in source
    assert f"examples/{name}/" in source, "each example keeps to its own key prefix"


async def test_config_centre(runs: dict[str, subprocess.Popen[str]], etcd_server: object) -> None:
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    out = output(runs, "config_centre")
    assert "loaded 3 settings" in out
    reloads = re.findall(r"^reload: (.*) \(revision (\d+)\)$", out, re.M)
    assert [r[0] for r in reloads] == [
        "db/pool = '20'",
        "db/pool = '30'",
        "feature/dark-mode = 'on'",
        "feature/search removed",
    ]
    revisions = [int(r[1]) for r in reloads]
    assert revisions == sorted(set(revisions)), "changes arrive in revision order, once each"
    assert "'db/pool': '30'" in out and "'feature/dark-mode': 'on'" in out
    await assert_cleaned_up(endpoint, "config_centre")


async def test_distributed_lock(
    runs: dict[str, subprocess.Popen[str]], etcd_server: object
) -> None:
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    out = output(runs, "distributed_lock")
    holds = re.findall(r"^worker-\d: holds the lock \(fencing token (\d+)\)", out, re.M)
    assert len(holds) == 6
    tokens = [int(t) for t in holds]
    assert tokens == sorted(tokens) and len(set(tokens)) == 6
    assert "counter = 6 after 3 workers x 2 rounds" in out
    assert "slow: fenced write applied? False" in out
    assert "fresh: fenced write applied? True" in out
    await assert_cleaned_up(endpoint, "distributed_lock")


async def test_heartbeat(runs: dict[str, subprocess.Popen[str]], etcd_server: object) -> None:
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    out = output(runs, "heartbeat")
    assert "monitor: worker-1 alive after 2.5 s? True" in out
    assert "alive now? False (lease revoked at once)" in out
    assert "monitor: worker-2 alive? True" in out
    expired = re.search(r"worker-2's key expired ([\d.]+) s after the crash .* alive\? False", out)
    assert expired, out
    assert 1.0 <= float(expired.group(1)) <= 2 + 5, "a dead process's key goes within ~TTL"
    await assert_cleaned_up(endpoint, "heartbeat")


async def test_service_discovery(
    runs: dict[str, subprocess.Popen[str]], etcd_server: object
) -> None:
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    out = output(runs, "service_discovery")
    lists = re.findall(r"^client: endpoint list now \[(.*)\]$", out, re.M)
    assert [sorted(x.replace("'", "").split(", ")) for x in lists] == [
        ["instance-1", "instance-2", "instance-3"],
        ["instance-1", "instance-3"],
        ["instance-1", "instance-3", "instance-4"],
    ]
    phases = out.split("instance-2: deregistered")
    assert len(phases) == 2
    assert "instance-2 echoes" in phases[0]
    assert "instance-2 echoes" not in phases[1], "no request goes to an instance that left"
    assert "instance-4 echoes more-" in phases[1]
    await assert_cleaned_up(endpoint, "service_discovery")


async def test_leader_election(runs: dict[str, subprocess.Popen[str]], etcd_server: object) -> None:
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    out = output(runs, "leader_election")
    seen = re.findall(r"^observer: the leader is now '(.*)'$", out, re.M)
    leaders = seen[::2]
    assert sorted(leaders) == ["alice", "bob", "carol"], seen  # each candidate led once
    assert seen[1::2] == [f"{n} (serving)" for n in leaders], seen
    first, second, third = leaders
    assert f"{first}: resigned" in out and f"{second}: crashes" in out
    failover = re.search(rf"failover to {third} after ([\d.]+) s", out)
    assert failover, out
    assert float(failover.group(1)) >= 1.0, "a crashed leader is replaced after its TTL"
    await assert_cleaned_up(endpoint, "leader_election")


async def test_sync_worker(runs: dict[str, subprocess.Popen[str]], etcd_server: object) -> None:
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    out = output(runs, "sync_worker")
    assert "config: db/pool = '10'" in out and "reload: db/pool = '20'" in out
    assert out.count("fenced write applied? True") == 3
    assert "counter = 3 after 3 workers" in out
    assert "discovered: ['10.0.0.7:8080']" in out and "after leaving: []" in out
    assert "leaders in turn: ['a', 'b']" in out
    await assert_cleaned_up(endpoint, "sync_worker")


def test_an_example_with_its_own_etcd(runs: dict[str, subprocess.Popen[str]]) -> None:
    out = output(runs, "service_discovery --embedded")
    assert out.startswith("started an embedded etcd at 127.0.0.1:")
