"""Leader election with proclamations, resignation and failover.

Three candidates (each with its own client, as separate processes would have)
campaign in one election with ``client.election(name, ttl=...)``. Exactly one
leads at a time; the others wait in the order they joined, each watching only
its predecessor's key. An observer follows the leadership with
``election.observe()``, which yields the leader's value each time leadership
or the value changes, in order.

* the leader announces a new value with ``election.proclaim()`` (fenced on its
  candidacy: a deposed leader gets ``aetcd.ElectionNotLeaderError``);
* the first leader steps down with ``election.resign()``: the next candidate
  takes over at once;
* the second leader "crashes" (its client is closed without resigning, as if
  the process died): its lease is no longer renewed, and the last candidate
  takes over once the TTL runs out;
* ``election.guard()``, like a lock's, fences the leader's own writes.

The layout is that of etcd's Go ``concurrency.Election``, so ``etcdctl elect``
and Go services can take part in the same election.

Run it against an etcd you have (``--endpoint HOST:PORT``, default
127.0.0.1:2379) or let it start one (``--embedded``)::

    python examples/leader_election.py --embedded --ttl 2

Every key it writes is under ``examples/leader_election/``, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import aetcd
from aetcd import Op

PREFIX = "examples/leader_election/"
ELECTION = PREFIX + "leader"
STATE = PREFIX + "state"


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


class Observer:
    """Follows the election and records every leader value it sees, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._changed = asyncio.Condition()

    async def run(self, client: aetcd.Client) -> None:
        async for leader in client.election(ELECTION).observe():
            value = leader.value.decode()
            print(f"observer: the leader is now {value!r}", flush=True)
            async with self._changed:
                self.seen.append(value)
                self._changed.notify_all()

    async def until(self, value: str, timeout: float = 10) -> None:
        """Wait until the observer has seen *value* as the latest leader value."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.seen[-1:] == [value])

    async def until_not(self, value: str, timeout: float = 10) -> str:
        """Wait until the latest leader value is no longer *value*; returns the new one."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.seen[-1:] != [value])
            return self.seen[-1]


async def run(endpoint: str, ttl: int) -> None:
    names = ["alice", "bob", "carol"]
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(aetcd.Client(endpoint))
        await admin.delete(PREFIX, prefix=True)
        clients = {n: await stack.enter_async_context(aetcd.Client(endpoint)) for n in names}
        elections = {n: clients[n].election(ELECTION, ttl=ttl) for n in names}

        watcher = Observer()
        observer = asyncio.create_task(watcher.run(admin))
        campaigns: dict[asyncio.Task[None], str] = {}
        for name in names:  # they queue in the order their candidacies reach etcd
            campaigns[asyncio.create_task(elections[name].campaign(name))] = name
        try:
            for turn in range(len(names)):
                done, _ = await asyncio.wait(campaigns, return_when=asyncio.FIRST_COMPLETED)
                task = done.pop()
                task.result()
                name = campaigns.pop(task)
                election = elections[name]
                print(f"{name}: elected (fencing token {election.revision})", flush=True)
                await watcher.until(name)

                await election.proclaim(f"{name} (serving)")
                await watcher.until(f"{name} (serving)")
                res = await clients[name].txn(
                    [election.guard()], [Op.put(STATE, f"written by {name}")]
                )
                assert res.succeeded

                if turn == 1:
                    print(f"{name}: crashes (client closed, no resign)", flush=True)
                    start = time.monotonic()
                    await clients[name].close()
                    successor = await watcher.until_not(f"{name} (serving)", timeout=ttl + 10)
                    print(
                        f"observer: failover to {successor} after "
                        f"{time.monotonic() - start:.1f} s (ttl {ttl} s)",
                        flush=True,
                    )
                else:
                    await election.resign()
                    print(f"{name}: resigned", flush=True)
            leader = await admin.election(ELECTION).leader()
            print(f"leader now: {leader.value.decode() if leader else None}", flush=True)
            # Each leader in turn, then its proclamation; every candidate led once.
            leaders = watcher.seen[::2]
            assert sorted(leaders) == names, watcher.seen
            assert watcher.seen[1::2] == [f"{n} (serving)" for n in leaders], watcher.seen
        finally:
            observer.cancel()
            for task in [observer, *campaigns]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:2379", help="etcd to use (host:port)")
    parser.add_argument("--embedded", action="store_true", help="start a private etcd instead")
    parser.add_argument("--ttl", type=int, default=2, help="candidates' lease TTL in seconds")
    args = parser.parse_args(argv)
    async with etcd_endpoint(args) as endpoint:
        try:
            await run(endpoint, args.ttl)
        finally:
            async with aetcd.Client(endpoint) as client:
                await client.delete(PREFIX, prefix=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
