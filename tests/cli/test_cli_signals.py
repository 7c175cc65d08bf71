"""Long-running commands as real processes: watch, lock, elect and lease keep-alive,
ended by real SIGINT/SIGTERM, with interop against etcdctl and the Python recipes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from typing import Any

import pytest
from cli_helpers import Spawn, aetcd_argv, run_cli

import aetcd
from aetcd.testing import find_etcdctl_binary


def etcdctl(endpoint: str, *args: str) -> list[str]:
    return [find_etcdctl_binary(), f"--endpoints={endpoint}", *args]


# -- watch ---------------------------------------------------------------------------


async def test_watch_prints_events_and_ends_on_sigint(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    ep, p = etcd_server.endpoint, etcd_prefix
    start = (await etcd_client.put(f"{p}a", "0")).header.revision + 1
    # --rev makes the test deterministic: nothing written from `start` on is missed.
    await etcd_client.put(f"{p}a", "1")
    await etcd_client.put(f"{p}a", "2")
    await etcd_client.delete(f"{p}a")
    await etcd_client.put(f"{p}other", "x")
    child = await spawn(aetcd_argv(ep, "watch", p, "--prefix", "--prev-kv", "--rev", str(start)))
    assert await child.lines(18) == [
        "PUT", f"{p}a", "0", f"{p}a", "1",
        "PUT", f"{p}a", "1", f"{p}a", "2",
        "DELETE", f"{p}a", "2", f"{p}a", "",
        "PUT", f"{p}other", "x",
    ]  # fmt: skip
    await etcd_client.put(f"{p}live", "now")  # and live events after the replay
    assert await child.lines(3) == ["PUT", f"{p}live", "now"]
    child.signal(signal.SIGINT)
    assert await child.wait() == 130
    assert await child.stderr() == ""


async def test_watch_json_and_exec_command_end_on_sigterm(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    key = f"{etcd_prefix}k"
    rev = (await etcd_client.put(key, "v1")).header.revision
    script = (
        'echo "ran $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE @$ETCD_WATCH_REVISION"'
    )
    argv = aetcd_argv(etcd_server.endpoint, "watch", key, "-w", "json", "--rev", str(rev))
    child = await spawn([*argv, "--", "sh", "-c", script])
    doc = json.loads(await child.line())
    assert doc["Header"]["revision"] >= rev
    assert [e["kv"]["mod_revision"] for e in doc["Events"]] == [rev]
    assert await child.line() == f"ran PUT {key}=v1 @{rev}"
    child.signal(signal.SIGTERM)
    assert await child.wait() == 143


# -- lock ----------------------------------------------------------------------------


async def test_lock_runs_a_command_with_the_lock_exported(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client
) -> None:
    name = f"{etcd_prefix}lock"
    res = await asyncio.to_thread(
        run_cli,
        etcd_server.endpoint,
        "lock",
        name,
        "--",
        "sh",
        "-c",
        'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"; exit 3',
    )
    assert res.code == 3, res.err  # the command's own status
    key, rev = res.text.split()
    assert re.fullmatch(re.escape(name) + r"/[0-9a-f]+", key)
    assert int(rev) > 0
    assert (await etcd_client.get(f"{name}/", prefix=True)).count == 0  # released

    missing = await asyncio.to_thread(
        run_cli, etcd_server.endpoint, "lock", name, "--", "no-such-cmd-xyz"
    )
    assert missing.code == 1 and missing.err.startswith("Error: cannot run 'no-such-cmd-xyz'")


async def test_lock_excludes_etcdctl_lock_both_ways(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    ep, name = etcd_server.endpoint, f"{etcd_prefix}mutex"
    # etcdctl holds the lock: ours waits, then runs once etcdctl lets go.
    theirs = await spawn(etcdctl(ep, "lock", name))
    their_key = await theirs.line()
    assert their_key.startswith(f"{name}/")
    ours = await spawn(aetcd_argv(ep, "lock", name, "--", "echo", "got it"))
    assert await ours.silent_for(1.0)
    theirs.signal(signal.SIGINT)
    assert await ours.line() == "got it"
    assert await ours.wait() == 0

    # Ours holds it (printing its key): etcdctl waits until ours is interrupted.
    ours = await spawn(aetcd_argv(ep, "lock", name))
    our_key = await ours.line()
    assert our_key.startswith(f"{name}/") and our_key != their_key
    theirs = await spawn(etcdctl(ep, "lock", name))
    assert await theirs.silent_for(1.0)
    ours.signal(signal.SIGINT)
    assert await ours.wait() == 130
    assert await ours.stderr() == ""
    assert (await theirs.line()).startswith(f"{name}/")
    theirs.signal(signal.SIGINT)
    await theirs.wait()


async def test_lock_excludes_python_lock_and_is_released_on_sigterm(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    ep, name = etcd_server.endpoint, f"{etcd_prefix}mutex"
    async with etcd_client.lock(name, ttl=5) as held:
        ours = await spawn(aetcd_argv(ep, "lock", name, "--", "echo", "mine now"))
        assert await ours.silent_for(0.8)
        timed_out = await asyncio.to_thread(run_cli, ep, "lock", "--timeout", "300ms", name)
        assert timed_out.code == 1 and "not acquired" in timed_out.err
        async with etcd_client.watch(f"{name}/", prefix=True) as queue, asyncio.timeout(10):
            waiter = await spawn(aetcd_argv(ep, "lock", name))
            await anext(aiter(queue))  # the waiter has queued up
        assert (await etcd_client.get(f"{name}/", prefix=True)).count == 3
        waiter.signal(signal.SIGINT)  # interrupted while waiting: leaves the queue
        assert await waiter.wait() == 130
        assert (await etcd_client.get(f"{name}/", prefix=True)).count == 2
        assert await held.is_owner()
    assert await ours.line() == "mine now"
    assert await ours.wait() == 0

    ours = await spawn(aetcd_argv(ep, "lock", name))
    key = await ours.line()
    other = etcd_client.lock(name, ttl=5)
    assert not await other.try_acquire()
    ours.signal(signal.SIGTERM)
    assert await ours.wait() == 143
    assert (await etcd_client.get(key)).count == 0  # released, not left to expire
    assert await other.try_acquire()
    await other.release()


async def test_interrupted_lock_stops_its_command_then_releases(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    name = f"{etcd_prefix}mutex"
    script = 'trap "echo child got INT; exit 7" INT; echo started; while :; do sleep 0.1; done'
    ours = await spawn(aetcd_argv(etcd_server.endpoint, "lock", name, "--", "sh", "-c", script))
    assert await ours.line() == "started"
    assert (await etcd_client.get(f"{name}/", prefix=True)).count == 1
    ours.signal(signal.SIGINT)  # only to aetcd: it passes the signal on
    assert await ours.line() == "child got INT"
    assert await ours.wait() == 130
    assert (await etcd_client.get(f"{name}/", prefix=True)).count == 0


# -- elect ---------------------------------------------------------------------------


async def test_elect_observe_and_campaign_with_python_candidates(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    ep, name = etcd_server.endpoint, f"{etcd_prefix}election"
    python = etcd_client.election(name, ttl=5)
    await python.campaign("py-value")
    observer = await spawn(aetcd_argv(ep, "elect", "-l", name))
    assert await observer.lines(2) == [python.key.decode(), "py-value"]  # type: ignore[union-attr]

    candidate = await spawn(aetcd_argv(ep, "elect", name, "cli-value", "--ttl", "5"))
    assert await candidate.silent_for(0.8)  # waits behind the Python leader
    await python.resign()
    key, value = await candidate.lines(2)
    assert key.startswith(f"{name}/") and value == "cli-value"
    assert await observer.lines(2) == [key, "cli-value"]
    leader = await python.leader()
    assert leader is not None and leader.value == b"cli-value"

    candidate.signal(signal.SIGINT)
    assert await candidate.wait() == 130
    assert await python.leader() is None  # resigned: the key is gone at once
    observer.signal(signal.SIGINT)
    assert await observer.wait() == 130
    assert await observer.stderr() == ""


async def test_elect_interoperates_with_etcdctl(
    etcd_server: Any, etcd_prefix: str, spawn: Spawn
) -> None:
    ep, name = etcd_server.endpoint, f"{etcd_prefix}election"
    ours = await spawn(aetcd_argv(ep, "elect", name, "aetcd-leader"))
    key, value = await ours.lines(2)
    assert value == "aetcd-leader"
    theirs = await spawn(etcdctl(ep, "elect", "-l", name))
    assert await theirs.lines(2) == [key, "aetcd-leader"]
    ours.signal(signal.SIGTERM)
    assert await ours.wait() == 143
    theirs.signal(signal.SIGINT)
    await theirs.wait()


# -- lease keep-alive ----------------------------------------------------------------


async def test_lease_keepalive_renews_until_interrupted(
    etcd_server: Any, etcd_client: aetcd.Client, spawn: Spawn
) -> None:
    lease = await etcd_client.grant(3)
    child = await spawn(aetcd_argv(etcd_server.endpoint, "lease", "keep-alive", f"{lease.id:x}"))
    expected = f"lease {lease.id:016x} keepalived with TTL(3)"
    assert await child.lines(3, timeout=5) == [expected] * 3  # every TTL/3 = 1 s
    child.signal(signal.SIGINT)
    assert await child.wait() == 130
    # Interrupting stops renewing; the lease is left to expire, not revoked.
    info = await etcd_client.time_to_live(lease)
    assert 0 < info.ttl <= 3
    await etcd_client.revoke(lease)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_watch_exit_status_names_the_signal(
    etcd_server: Any, etcd_prefix: str, etcd_client: aetcd.Client, spawn: Spawn, sig: signal.Signals
) -> None:
    key = f"{etcd_prefix}x"
    rev = (await etcd_client.put(key, "v")).header.revision
    child = await spawn(aetcd_argv(etcd_server.endpoint, "watch", key, "--rev", str(rev)))
    assert await child.lines(3) == ["PUT", key, "v"]  # running, signal handlers in place
    child.signal(sig)
    assert await child.wait() == 128 + sig
    assert await child.stderr() == ""
