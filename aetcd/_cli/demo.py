"""A guided tour of aetcd against an etcd it starts itself (or one you name).

Run it with ``scripts/demo`` or ``python -m aetcd demo [--endpoints HOST:PORT]``.
Every step prints what it does and what etcd answered. It lives under the CLI, not
in the library: it starts etcd through :mod:`aetcd.testing`, which the library
itself never imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import aetcd
from aetcd import Compare, Op
from aetcd.recipes import is_alive


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


async def tour_lease(client: aetcd.Client, root: str) -> None:
    step("Leases: keys that vanish when their owner stops renewing them")
    loop = asyncio.get_running_loop()
    lease = await client.grant(ttl=2)
    await client.put(f"{root}session/worker-7", "busy", lease=lease)
    info = await client.time_to_live(lease, keys=True)
    say(f"granted lease {lease.id:#x} (ttl {info.granted_ttl} s) holding {info.keys}")
    start = loop.time()
    async with client.watch(f"{root}session/worker-7") as watch:
        async for event in watch:
            if event.type is aetcd.EventType.DELETE:
                break
    say(f"nobody renewed it: etcd deleted the key after {loop.time() - start:.1f} s")

    async with client.heartbeat(f"{root}heart-ping", "live", ttl=2) as hb:
        await asyncio.sleep(3)
        alive = await is_alive(client, f"{root}heart-ping")
        say(
            f"heartbeat 'heart-ping' under a lease kept alive in the background: still there "
            f"after 3 s > ttl 2 s: {alive} (lease {hb.lease_id:#x})"
        )
    gone = not await is_alive(client, f"{root}heart-ping")
    say(f"leaving the block revoked the lease: heartbeat key gone: {gone}")


async def tour_watch(client: aetcd.Client, root: str) -> None:
    step("Hot reload: a watch sees every configuration change, in order")
    prefix = f"{root}config/"
    current = {kv.key: kv.value for kv in await client.get(prefix, prefix=True)}
    say(f"loaded {len(current)} settings")
    async with client.watch(prefix, prefix=True, prev_kv=True) as watch:

        async def operator() -> None:
            await client.put(f"{prefix}db/pool", "50")
            await client.put(f"{prefix}feature/search", "off")
            await client.delete(f"{prefix}feature/search")

        writer = asyncio.create_task(operator())
        seen = 0
        async for event in watch:
            key = event.kv.key.decode().removeprefix(prefix)
            if event.type is aetcd.EventType.PUT:
                old = event.prev_kv.value.decode() if event.prev_kv else None
                current[event.kv.key] = event.kv.value
                say(
                    f"  reload: {key} {old!r} -> {event.kv.value.decode()!r} "
                    f"(revision {event.kv.mod_revision})"
                )
            else:
                current.pop(event.kv.key, None)
                say(f"  reload: {key} removed (revision {event.kv.mod_revision})")
            seen += 1
            if seen == 3:
                break
        await writer
    say(f"now {len(current)} settings; the watch resumes by itself after reconnects")


async def tour_recipes(client: aetcd.Client, root: str) -> None:
    step("Distributed lock: several workers, one at a time, in arrival order")
    log: list[str] = []

    async def worker(name: str) -> None:
        async with client.lock(f"{root}locks/report", ttl=5, timeout=30) as lock:
            log.append(name)
            say(f"  {name} holds {lock.key.decode()} (fencing token {lock.revision})")
            # Writes made under the lock are guarded by it: a holder that lost
            # the lock (paused, partitioned) cannot overwrite the next one's work.
            res = await client.txn([lock.guard()], [Op.put(f"{root}report", name)])
            assert res.succeeded
            await asyncio.sleep(0.1)

    await asyncio.gather(*(worker(f"worker-{i}") for i in range(4)))
    say(f"order of service: {', '.join(log)}; key layout shared with `etcdctl lock`")

    step("Leader election with failover")
    alice = client.election(f"{root}leader", ttl=5)
    bob = client.election(f"{root}leader", ttl=5)
    await alice.campaign("alice")
    leader = await alice.leader()
    assert leader is not None
    say(f"leader: {leader.value.decode()}")
    bob_wins = asyncio.create_task(bob.campaign("bob"))
    await asyncio.sleep(0.2)
    say(f"bob is waiting behind alice: {not bob_wins.done()}")
    await alice.proclaim("alice (v2)")
    leader = await bob.leader()
    assert leader is not None
    say(f"alice proclaims a new value: {leader.value.decode()}")
    await alice.resign()
    await bob_wins
    leader = await bob.leader()
    assert leader is not None
    say(f"alice resigned: the new leader is {leader.value.decode()}")
    await bob.resign()


_INSTANCE = """
import asyncio, sys
import aetcd

async def main():
    async with aetcd.Client(sys.argv[1]) as client:
        async with client.register(sys.argv[2], sys.argv[3], ttl=2, metadata={"zone": "b"}):
            print("registered", flush=True)
            await asyncio.sleep(3600)

asyncio.run(main())
"""


async def tour_discovery(client: aetcd.Client, root: str, endpoint: str) -> None:
    step("Service discovery: instances come and go with their processes")
    service = f"{root}services/search"
    loop = asyncio.get_running_loop()
    async with (
        client.register(service, "10.0.0.7:8080", ttl=5, metadata={"zone": "a"}),
        client.discover(service) as found,
    ):
        updates = found.updates()
        say(f"instances: {sorted(found.instances)}")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _INSTANCE,
            endpoint,
            service,
            "10.0.0.8:8080",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            await child.stdout.readline()
            while "10.0.0.8:8080" not in found.instances:
                await anext(updates)
            say(f"a second process registered: {sorted(found.instances)}")
            child.kill()  # it dies without a goodbye: its lease (ttl 2 s) expires
            start = loop.time()
            while "10.0.0.8:8080" in found.instances:
                await anext(updates)
            say(
                f"the killed instance vanished {loop.time() - start:.1f} s later: "
                f"{sorted(found.instances)}"
            )
        finally:
            if child.returncode is None:
                child.kill()
            await child.wait()
        await updates.aclose()


async def tour_coalescing(endpoint: str, root: str) -> None:
    step("Request coalescing: concurrent calls share RPCs")
    n = 2000
    keys = [f"{root}fast/{i % 64}" for i in range(n)]
    async with (
        aetcd.Client(endpoint, coalesce_reads=False) as plain,
        aetcd.Client(endpoint, coalesce_writes=True) as batched,
    ):
        await asyncio.gather(*(plain.put(k, "v") for k in keys[:64]))
        timings: dict[str, float] = {}
        for label, client in (("one RPC per get", plain), ("coalesced gets", batched)):
            start = time.perf_counter()
            results = await asyncio.gather(*(client.get(k) for k in keys))
            timings[label] = time.perf_counter() - start
            assert all(r.first is not None for r in results)
        say(
            f"{n} concurrent gets: {timings['one RPC per get'] * 1000:.0f} ms one RPC each, "
            f"{timings['coalesced gets'] * 1000:.0f} ms coalesced (read-only txns, "
            "each batch at one revision)"
        )
        for label, client in (("one RPC per put", plain), ("coalesced puts", batched)):
            start = time.perf_counter()
            puts = await asyncio.gather(
                *(client.put(f"{root}fast/{label[:3]}/{i}", str(i)) for i in range(n))
            )
            timings[label] = time.perf_counter() - start
            revisions = len({p.header.revision for p in puts})
            say(
                f"{n} concurrent puts, {label}: {timings[label] * 1000:.0f} ms, "
                f"{revisions} revisions"
            )
        stored = await plain.get(f"{root}fast/coa/", prefix=True, count_only=True)
        say(f"every coalesced put is stored: {stored.count == n}")


async def tour_cluster() -> None:
    step("A 3-member cluster loses its leader; the client keeps working")
    from aetcd.testing import EtcdCluster

    loop = asyncio.get_running_loop()
    async with (
        EtcdCluster(size=3) as cluster,
        aetcd.Client(cluster.endpoints, timeout=2) as client,
        client.watch("demo/failover/", prefix=True) as watch,
    ):
        say(f"cluster at {', '.join(cluster.endpoints)}")
        stop = asyncio.Event()
        acked, unknown, gap = 0, 0, 0.0
        seen: list[int] = []
        caught_up = asyncio.Event()
        target = [0]

        async def writer() -> None:
            nonlocal acked, unknown, gap
            last = loop.time()
            i = 0
            while not stop.is_set():
                try:
                    await client.put(f"demo/failover/{i:05d}", str(i))
                    acked += 1
                    now = loop.time()
                    gap, last = max(gap, now - last), now
                except aetcd.OutcomeUnknownError:
                    unknown += 1  # in flight when the leader died: maybe applied
                i += 1
                await asyncio.sleep(0.01)

        async def reader() -> None:
            async for event in watch:
                seen.append(event.kv.mod_revision)
                if target[0] and len(seen) >= target[0]:
                    caught_up.set()

        async with asyncio.TaskGroup() as tg:
            read_task = tg.create_task(reader())
            write_task = tg.create_task(writer())
            await asyncio.sleep(1.0)
            leader = await cluster.leader()
            say(f"killing the leader {leader.name} (kill -9) after {acked} writes")
            leader.kill()
            await asyncio.sleep(3.0)
            say(f"new leader: {(await cluster.leader()).name}")
            stop.set()
            await write_task
            stored = (await client.get("demo/failover/", prefix=True, count_only=True)).count
            target[0] = stored
            if len(seen) < stored:
                async with asyncio.timeout(15):
                    await caught_up.wait()
            read_task.cancel()
        ordered = seen == sorted(set(seen))
        say(
            f"{acked} writes acknowledged, {unknown} with unknown outcome, {stored} stored, "
            f"{len(seen)} watch events (in order, no duplicate: {ordered}); "
            f"longest pause {gap:.2f} s"
        )
        assert acked <= stored <= acked + unknown and len(seen) == stored and ordered


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


async def main(endpoint: str | None = None) -> int:
    """Run the whole tour against ``endpoint``, or against an embedded etcd when None."""
    async with _endpoint(endpoint) as endpoint:
        async with aetcd.Client(endpoint) as client:
            root = "aetcd-demo/"
            await client.delete(root, prefix=True)
            await tour_kv(client, root)
            await tour_txn_lock(client, root)
            await tour_lease(client, root)
            await tour_watch(client, root)
            await tour_recipes(client, root)
            await tour_discovery(client, root, endpoint)
            await tour_coalescing(endpoint, root)
            await client.delete(root, prefix=True)
    await tour_cluster()
    say()
    say("tour complete")
    return 0
