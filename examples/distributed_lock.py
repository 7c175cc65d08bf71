"""Distributed lock with fenced writes.

Several workers (each with its own client, as separate processes would have)
take turns on one lock with ``client.lock(name)`` and update a shared counter
in etcd. The lock queues them in arrival order; each waiter watches only its
predecessor's key (no polling, no thundering herd).

A lock alone does not make the protected writes safe: a holder that pauses
(GC, a stopped VM, a slow network) for longer than its lease TTL loses the lock
without knowing it, and the next holder gets it too. So every write made under
the lock is *fenced*: it goes in a txn guarded by ``lock.guard()``, a compare
that holds only while this holder's lock key still exists with the same
create revision (``lock.revision``, the fencing token). etcd itself then
refuses the write of a holder that lost the lock.

The last part shows exactly that: a holder's lease is revoked behind its back
(as if it had been paused past its TTL), another worker takes the lock, and
the stale holder's fenced write is refused while the new holder's succeeds.

Run it against an etcd you have (``--endpoint HOST:PORT``, default
127.0.0.1:2379) or let it start one (``--embedded``)::

    python examples/distributed_lock.py --embedded --workers 4 --rounds 2

Every key it writes is under ``examples/distributed_lock/``, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import aetcd
from aetcd import Op
from aetcd.recipes import Lock

PREFIX = "examples/distributed_lock/"
LOCK = PREFIX + "lock"
COUNTER = PREFIX + "counter"


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


async def worker(endpoint: str, name: str, rounds: int, tokens: list[int]) -> None:
    async with aetcd.Client(endpoint) as client:
        for _ in range(rounds):
            # ttl: how long the lock outlives this process if it dies while holding it.
            async with client.lock(LOCK, ttl=5, timeout=30) as lock:
                tokens.append(lock.revision)
                current = (await client.get(COUNTER)).first
                value = int(current.value) if current else 0
                await asyncio.sleep(0.02)  # "work" while holding the lock
                res = await client.txn(
                    compare=[lock.guard()],  # only while we still hold the lock
                    success=[Op.put(COUNTER, str(value + 1))],
                )
                assert res.succeeded
                print(
                    f"{name}: holds the lock (fencing token {lock.revision}), "
                    f"counter {value} -> {value + 1}",
                    flush=True,
                )


async def stale_holder(endpoint: str) -> None:
    """A holder loses its lock without noticing; its fenced write is refused."""
    async with aetcd.Client(endpoint) as admin, aetcd.Client(endpoint) as slow_client:
        async with slow_client.session(ttl=5) as session:
            slow = Lock(session, LOCK)
            await slow.acquire(timeout=10)
            guard = slow.guard()
            print(
                f"slow: holds the lock (fencing token {slow.revision}), then pauses...", flush=True
            )

            # The pause outlasts the lease: here we revoke it, which is what expiry does.
            await admin.revoke(session.lease_id)
            async with admin.lock(LOCK, ttl=5, timeout=10) as fresh:
                print(f"fresh: took the lock over (fencing token {fresh.revision})", flush=True)

                # The slow holder wakes up and writes, fenced by its (old) token.
                late = await slow_client.txn([guard], [Op.put(COUNTER, "written by slow")])
                print(f"slow: fenced write applied? {late.succeeded} (etcd refused it)", flush=True)
                ok = await admin.txn([fresh.guard()], [Op.put(COUNTER, "written by fresh")])
                print(f"fresh: fenced write applied? {ok.succeeded}", flush=True)
                assert not late.succeeded and ok.succeeded
            await slow.release()  # a no-op: its key is long gone


async def run(endpoint: str, workers: int, rounds: int) -> None:
    async with aetcd.Client(endpoint) as client:
        await client.delete(PREFIX, prefix=True)
    tokens: list[int] = []
    await asyncio.gather(
        *(worker(endpoint, f"worker-{i}", rounds, tokens) for i in range(1, workers + 1))
    )
    async with aetcd.Client(endpoint) as client:
        final = (await client.get(COUNTER)).first
        assert final is not None
        print(
            f"counter = {final.value.decode()} after {workers} workers x {rounds} rounds; "
            f"no update was lost",
            flush=True,
        )
        assert int(final.value) == workers * rounds
        assert tokens == sorted(tokens), "fencing tokens grow with every new holder"
        print(f"fencing tokens, in the order the lock was held: {tokens}", flush=True)
    await stale_holder(endpoint)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:2379", help="etcd to use (host:port)")
    parser.add_argument("--embedded", action="store_true", help="start a private etcd instead")
    parser.add_argument("--workers", type=int, default=4, help="how many workers contend")
    parser.add_argument("--rounds", type=int, default=2, help="lock turns per worker")
    args = parser.parse_args(argv)
    async with etcd_endpoint(args) as endpoint:
        try:
            await run(endpoint, args.workers, args.rounds)
        finally:
            async with aetcd.Client(endpoint) as client:
                await client.delete(PREFIX, prefix=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
