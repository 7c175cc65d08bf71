"""After ``client.close()`` nothing of the client is left on the event loop.

An application that closes its client and then its loop must see no error
output: no ``Event loop is closed`` from gRPC's poller delivering a late event,
no ``Task was destroyed but it is pending!``. The client runs in a child
process (its own loops, its own gRPC state, and its exit is part of the check),
with a watch, a kept-alive lease, a lock, coalesced reads and writes and a
keep-alive stream of its own, three times in a row.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest

import aetcd

_SCRIPT = """
import asyncio, gc, logging, sys, time
import aetcd

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
endpoint, prefix, mode = sys.argv[1:4]


async def use(client: aetcd.Client) -> None:
    await client.put(prefix + "k", "v")
    watch = client.watch(prefix, prefix=True)
    await watch.start()
    lease = await client.lease(5).__aenter__()
    lock = client.lock(prefix + "lock", ttl=5)
    await lock.acquire()
    await asyncio.gather(*(client.get(prefix + "k") for _ in range(10)))
    await asyncio.gather(*(client.put(f"{prefix}{i}", "v") for i in range(10)))
    await client.keepalive_once(lease)
    await asyncio.sleep(0.2)


async def main() -> None:
    if mode == "close":
        client = aetcd.Client(endpoint, coalesce_writes=True)
        await use(client)
        await client.close()
    else:
        async with aetcd.Client(endpoint, coalesce_writes=True) as client:
            await use(client)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if left:
        print("left on the loop:", left, file=sys.stderr)


for _ in range(3):
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.close()
gc.collect()
time.sleep(0.5)  # late events of gRPC's poller thread would be reported by now
print("done")
"""


def _run(tmp_path: Path, endpoint: str, prefix: str, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "shutdown.py"
    script.write_text(_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), endpoint, prefix, mode],
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.slow
def test_close_then_closing_the_loop_is_silent(
    etcd_server: Any, etcd_prefix: str, tmp_path: Path
) -> None:
    result = _run(tmp_path, etcd_server.endpoint, etcd_prefix, "close")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr == ""


@pytest.mark.slow
def test_leaving_async_with_then_closing_the_loop_is_silent(
    etcd_server: Any, etcd_prefix: str, tmp_path: Path
) -> None:
    result = _run(tmp_path, etcd_server.endpoint, etcd_prefix, "with")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr == ""


async def test_close_leaves_no_task_timer_or_reference(etcd_server: Any, etcd_prefix: str) -> None:
    """After close() the client's tasks are gone and nothing (a timer of an idle
    private session, a background task, a registry) keeps the client alive."""
    before = asyncio.all_tasks()
    p = etcd_prefix

    async def use_and_close() -> weakref.ref[aetcd.Client]:
        # In a frame of its own: grpcio < 1.7x reads the f_locals of every task's
        # outermost frame when a channel closes, and that snapshot would keep a
        # local of this test's frame alive (the test's reference, not aetcd's).
        client = aetcd.Client(etcd_server.endpoint, coalesce_writes=True)
        await client.put(p + "k", "v")
        lease_block = client.lease(5)
        lease = await lease_block.__aenter__()
        await client.put(p + "leased", "v", lease=lease)
        watch = client.watch(p, prefix=True)
        await watch.start()
        async with client.lock(p + "lock", ttl=5):  # leaves an idle private session
            pass
        election = client.election(p + "election", ttl=6)  # not the idle session
        await election.campaign("me")
        await asyncio.gather(*(client.get(p + "k") for _ in range(10)))
        await asyncio.gather(*(client.put(f"{p}{i}", "v") for i in range(10)))
        await client.close()
        assert asyncio.all_tasks() - before == set()
        return weakref.ref(client)

    ref = await use_and_close()
    gc.collect()
    assert ref() is None
