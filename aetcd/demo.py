"""A guided tour of aetcd against an etcd it starts itself (or one you name).

Run it with ``scripts/demo`` (or ``python -m aetcd.demo [--endpoint HOST:PORT]``).
Every step prints what it does and what etcd answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import aetcd
from aetcd import Compare, Op


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title}")


async def tour_kv(client: aetcd.Client, root: str) -> None:
    step("Configuration centre: put, get, prefix reads")
    await client.put(f"{root}config/db/url", "postgres://db.internal/app")
    await client.put(f"{root}config/db/pool", "10")
    await client.put(f"{root}config/feature/search", "on")
    kv = (await client.get(f"{root}config/db/url")).first
    assert kv is not None
    say(f"get {kv.key.decode()!r} -> {kv.value.decode()!r}")
    result = await client.get(f"{root}config/", prefix=True)
    say(f"prefix {root}config/ holds {result.count} keys:")
    for item in result:
        say(f"  {item.key.decode()} = {item.value.decode()}")
    keys = await client.get(f"{root}config/", prefix=True, keys_only=True, limit=2)
    say(f"keys_only with limit=2 -> {[k.key.decode() for k in keys]}, more={keys.more}")

    step("Revisions: every write makes one; reads can travel back in time")
    first = await client.put(f"{root}config/db/pool", "20")
    second = await client.put(f"{root}config/db/pool", "30", prev_kv=True)
    assert second.prev_kv is not None
    say(f"put pool=20 at revision {first.header.revision}")
    say(
        f"put pool=30 at revision {second.header.revision} "
        f"(previous value {second.prev_kv.value.decode()!r})"
    )
    old = (await client.get(f"{root}config/db/pool", revision=first.header.revision)).first
    now = (await client.get(f"{root}config/db/pool")).first
    assert old is not None and now is not None
    say(
        f"pool at revision {first.header.revision}: {old.value.decode()!r}; "
        f"now: {now.value.decode()!r} (version {now.version}, "
        f"created at {now.create_revision}, modified at {now.mod_revision})"
    )


async def tour_txn_lock(client: aetcd.Client, root: str) -> None:
    step("Txn compare-and-swap: the classic create_revision == 0 lock")
    lock_key = f"{root}locks/nightly-job"

    async def try_lock(worker: str) -> bool:
        res = await client.txn(
            compare=[Compare.create_revision(lock_key) == 0],
            success=[Op.put(lock_key, worker)],
            failure=[Op.get(lock_key)],
        )
        if res.succeeded:
            say(f"{worker}: acquired {lock_key} at revision {res.header.revision}")
        else:
            holder = res.responses[0]
            assert isinstance(holder, aetcd.GetResult) and holder.first is not None
            say(f"{worker}: busy, held by {holder.first.value.decode()!r}")
        return res.succeeded

    results = await asyncio.gather(*(try_lock(f"worker-{i}") for i in range(3)))
    say(f"exactly one winner: {results.count(True) == 1}")
    holder = (await client.get(lock_key)).first
    assert holder is not None
    # Release fenced on the holder's create revision: only the owner's key is deleted.
    release = await client.txn(
        compare=[Compare.create_revision(lock_key) == holder.create_revision],
        success=[Op.delete(lock_key)],
    )
    say(f"{holder.value.decode()}: released (fenced delete succeeded={release.succeeded})")

    step("Errors are typed and raised before any I/O for bad input")
    for label, call in (
        ("empty key", client.put("", "x")),
        ("int value", client.put(f"{root}x", 42)),  # type: ignore[arg-type]
        ("negative limit", client.get(f"{root}x", limit=-1)),
    ):
        try:
            await call
        except (TypeError, aetcd.EtcdError) as exc:
            say(f"{label}: {type(exc).__name__}: {exc}")
    try:
        await client.get(f"{root}x", revision=10**9)
    except aetcd.FutureRevisionError as exc:
        say(f"future revision: {type(exc).__name__}: {exc.message} (retryable={exc.retryable})")


@contextlib.asynccontextmanager
async def _endpoint(given: str | None) -> AsyncIterator[str]:
    if given:
        yield given
        return
    from aetcd.testing import EtcdServer

    say("starting an embedded etcd on a free loopback port...")
    async with EtcdServer() as server:
        say(f"etcd is serving at {server.endpoint}")
        yield server.endpoint


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aetcd.demo", description=__doc__)
    parser.add_argument("--endpoint", help="use this etcd instead of starting one")
    args = parser.parse_args(argv)
    async with _endpoint(args.endpoint) as endpoint:
        async with aetcd.Client(endpoint) as client:
            root = "aetcd-demo/"
            await client.delete(root, prefix=True)
            await tour_kv(client, root)
            await tour_txn_lock(client, root)
            await client.delete(root, prefix=True)
    say()
    say("tour complete")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
