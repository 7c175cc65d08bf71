"""Heartbeat: a key that exists exactly while a process is alive.

``client.heartbeat(key, value, ttl=...)`` writes *key* attached to a lease and
keeps the lease alive in the background; anyone can ask
``aetcd.recipes.is_alive(client, key)`` (or watch the key) to know whether the
process is up. Two ways for the key to go:

1. the process leaves the ``async with`` block (a clean shutdown): the lease
   is revoked and the key disappears at once;
2. the process dies (here: a child process killed with SIGKILL, so nothing
   is cleaned up): nobody renews the lease, and etcd deletes the key when the
   TTL runs out, within about *ttl* seconds.

A monitor watches the key and reports both. If the lease is lost while the
process lives (etcd unreachable for longer than the TTL), the heartbeat
grants a new lease and writes the key again by itself (``hb.restored()``).

Run it against an etcd you have (``--endpoint HOST:PORT``, default
127.0.0.1:2379) or let it start one (``--embedded``)::

    python examples/heartbeat.py --embedded --ttl 2

Every key it writes is under ``examples/heartbeat/``, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator

import aetcd
from aetcd.recipes import is_alive

PREFIX = "examples/heartbeat/"


@contextlib.asynccontextmanager
async def etcd_endpoint(args: argparse.Namespace) -> AsyncIterator[str]:
    """The etcd to use: the one named on the command line, or an embedded one."""
    if not args.embedded:
        yield args.endpoint
        return
    from aetcd.testing import EtcdServer

    async with EtcdServer() as server:
        print(f"started an embedded etcd at {server.endpoint}", flush=True)
        yield server.endpoint


async def wait_deleted(client: aetcd.Client, key: str) -> float:
    """Wait (by watch) until *key* is deleted; returns the seconds waited."""
    start = time.monotonic()
    res = await client.get(key)
    if not res.kvs:
        return 0.0
    # Watch from just after the read: the delete cannot be missed.
    async with client.watch(key, start_revision=res.header.revision + 1) as watch:
        async for event in watch:
            if event.type is aetcd.EventType.DELETE:
                break
    return time.monotonic() - start


async def clean_shutdown(client: aetcd.Client, ttl: int) -> None:
    key = PREFIX + "worker-1"
    async with client.heartbeat(key, "pid 1", ttl=ttl) as hb:
        print(f"worker-1: heartbeat written (lease {hb.lease_id:#x}, ttl {ttl} s)", flush=True)
        await asyncio.sleep(ttl + 0.5)  # longer than the TTL: the keep-alive does its job
        alive = await is_alive(client, key)
        print(f"monitor: worker-1 alive after {ttl + 0.5:.1f} s? {alive}", flush=True)
        assert alive and hb.alive
    alive = await is_alive(client, key)
    print(
        f"monitor: worker-1 left its block; alive now? {alive} (lease revoked at once)", flush=True
    )
    assert not alive


async def crash(client: aetcd.Client, endpoint: str, ttl: int) -> None:
    key = PREFIX + "worker-2"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        key,
        "--endpoint",
        endpoint,
        "--ttl",
        str(ttl),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        print(line.decode().rstrip(), flush=True)
        print(f"monitor: worker-2 alive? {await is_alive(client, key)}", flush=True)
        watcher = asyncio.create_task(wait_deleted(client, key))
        await asyncio.sleep(0.2)  # let the watch start before the crash
        child.send_signal(signal.SIGKILL)
        print("worker-2: killed with SIGKILL (no clean-up at all)", flush=True)
        waited = await asyncio.wait_for(watcher, ttl + 10)
        print(
            f"monitor: worker-2's key expired {waited:.1f} s after the crash "
            f"(ttl {ttl} s); alive? {await is_alive(client, key)}",
            flush=True,
        )
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def child_main(key: str, endpoint: str, ttl: int) -> int:
    """The process that gets killed: beat until killed (at most 60 s)."""
    async with aetcd.Client(endpoint) as client, client.heartbeat(key, "pid 2", ttl=ttl) as hb:
        print(f"worker-2: heartbeat written (lease {hb.lease_id:#x}, ttl {ttl} s)", flush=True)
        await asyncio.sleep(60)
    return 0


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:2379", help="etcd to use (host:port)")
    parser.add_argument("--embedded", action="store_true", help="start a private etcd instead")
    parser.add_argument("--ttl", type=int, default=2, help="heartbeat lease TTL in seconds")
    parser.add_argument("--child", metavar="KEY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return await child_main(args.child, args.endpoint, args.ttl)
    async with etcd_endpoint(args) as endpoint, aetcd.Client(endpoint) as client:
        try:
            await clean_shutdown(client, args.ttl)
            await crash(client, endpoint, args.ttl)
        finally:
            await client.delete(PREFIX, prefix=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
