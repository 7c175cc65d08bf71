"""Registration and discovery: Go ``naming/endpoints`` layout both ways, dead
registrants vanish within the TTL, churn converges, compaction while behind re-lists."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from recipe_helpers import Proxy, python_child

import aetcd
from aetcd.recipes.discovery import (
    Discovery,
    DiscoveryUpdates,
    Instance,
    Registration,
    decode_endpoint,
    encode_endpoint,
)
from aetcd.testing.pytest_plugin import EtcdServerFactory

# A child process registering one instance until it is killed.
REGISTRANT = """
import asyncio, sys
import aetcd

async def main():
    endpoint, service, addr, ttl = sys.argv[1:5]
    async with aetcd.Client(endpoint) as client:
        async with client.register(service, addr, ttl=int(ttl), metadata={"pid": 1}) as reg:
            print(reg.lease_id, flush=True)
            await asyncio.Event().wait()

asyncio.run(main())
"""


async def next_matching(
    updates: DiscoveryUpdates, wanted: Callable[[dict[str, Instance]], bool], within: float
) -> dict[str, Instance]:
    async with asyncio.timeout(within):
        async for instances in updates:
            if wanted(instances):
                return instances
    raise AssertionError("the updates ended")


def test_value_layout_is_what_go_writes() -> None:
    # Byte-for-byte what Go's json.Marshal(internal.Update{Op: Add, ...}) produces:
    # struct field order, compact, sorted map keys, HTML-escaped <, >, &.
    assert encode_endpoint("10.0.0.7:8080") == b'{"Op":0,"Addr":"10.0.0.7:8080","Metadata":null}'
    assert (
        encode_endpoint("h:1", {"zone": "a", "weight": 2, "tags": ["x<y", "a&b"], "é": 1.5})
        == '{"Op":0,"Addr":"h:1","Metadata":{"tags":["x\\u003cy","a\\u0026b"],'
        '"weight":2,"zone":"a","é":1.5}}'.encode()
    )
    for bad in (object(), math.nan, {1: 2, "a": 3}, b"bytes"):
        with pytest.raises(TypeError):
            encode_endpoint("h:1", bad)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError):
        encode_endpoint("h:1", loop)
    # What Go's resolver accepts: Op ignored, field names case-insensitive, extra fields fine.
    assert decode_endpoint(b'{"Op":1,"Addr":"a:1","Metadata":{"k":[1]}}') == Instance(
        "a:1", {"k": [1]}
    )
    assert decode_endpoint(b'{"addr":"b:2","extra":true}') == Instance("b:2", None)
    for bad_value in (b"nope", b"[]", b'{"Metadata":1}', b'{"Addr":5}', b'{"Addr":""}'):
        with pytest.raises(ValueError):
            decode_endpoint(bad_value)


async def test_bad_input_rejected_before_io(etcd_client: aetcd.Client) -> None:
    with pytest.raises(TypeError):
        etcd_client.register("svc", "h:1", metadata={"f": object()})
    with pytest.raises(TypeError):
        etcd_client.register("svc", 8080)  # type: ignore[arg-type]
    with pytest.raises(aetcd.InvalidArgumentError):
        etcd_client.register("svc", "")
    with pytest.raises(aetcd.EmptyKeyError):
        etcd_client.register("", "h:1")
    with pytest.raises(aetcd.InvalidArgumentError):
        etcd_client.register("svc", "h:1", ttl=0)
    with pytest.raises(RuntimeError):
        Discovery(etcd_client, "svc").updates()  # not open


async def test_register_discover_go_layout_and_foreign_values(
    etcd_client: aetcd.Client, etcd_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    svc = etcd_prefix + "my-service"
    wanted = {f"10.0.0.{i}:8080": {"zone": "ab"[i % 2], "weight": i} for i in range(1, 4)}
    async with contextlib.AsyncExitStack() as stack:
        regs = [
            await stack.enter_async_context(etcd_client.register(svc, addr, ttl=5, metadata=meta))
            for addr, meta in wanted.items()
        ]
        assert all(isinstance(r, Registration) and r.alive for r in regs)
        raw = await etcd_client.get(svc + "/", prefix=True)
        assert [kv.key.decode() for kv in raw] == [f"{svc}/{addr}" for addr in wanted]
        first = raw.kvs[0]
        assert first.value == b'{"Op":0,"Addr":"10.0.0.1:8080","Metadata":{"weight":1,"zone":"b"}}'
        assert first.lease == regs[0].lease_id
        assert json.loads(first.value) == {
            "Op": 0,
            "Addr": "10.0.0.1:8080",
            "Metadata": wanted["10.0.0.1:8080"],
        }

        async with etcd_client.discover(svc) as d:
            assert d.instances == {a: Instance(a, m) for a, m in wanted.items()}
            assert d.revision >= raw.header.revision
            updates = d.updates()
            assert await anext(updates) == d.instances  # first: the current set
            # Written the way etcd's docs show for etcdctl (no Op), and by other writers.
            await etcd_client.put(svc + "/1.2.3.4", '{"Addr":"1.2.3.4","Metadata":"..."}')
            await etcd_client.put(svc + "/junk", "not json")
            await etcd_client.put(svc + "/no-addr", '{"Metadata": 1}')
            await etcd_client.put(svc + "2/other", '{"Addr":"9.9.9.9"}')  # another service
            last = await etcd_client.put(svc + "/lower", '{"addr":"5.6.7.8"}')
            await d.wait_for(last.header.revision, timeout=5)
            assert set(d.instances) == {*wanted, "1.2.3.4", "5.6.7.8"}
            assert d.instances["1.2.3.4"].metadata == "..."
            latest = await anext(updates)
            assert latest == d.instances
        skipped = [r.message for r in caplog.records if r.levelno == logging.WARNING]
        assert any("junk" in m for m in skipped) and any("no-addr" in m for m in skipped)
    # Removed at once on exit.
    left = await etcd_client.get(svc + "/10.", prefix=True)
    assert left.count == 0


async def test_dead_registrant_disappears_and_revoked_one_comes_back(
    etcd_server: Any, etcd_client: aetcd.Client, etcd_prefix: str, spawn: Any
) -> None:
    svc = etcd_prefix + "svc"
    ttl = 2
    async with etcd_client.discover(svc) as d:
        updates = d.updates()
        child = await spawn(
            python_child(REGISTRANT, etcd_server.endpoint, svc, "child:1", str(ttl))
        )
        await child.line()
        async with etcd_client.register(svc, "local:1", ttl=ttl) as reg:
            both = await next_matching(updates, lambda s: set(s) == {"child:1", "local:1"}, 10)
            assert both["child:1"].metadata == {"pid": 1}

            child.signal(signal.SIGKILL)
            start = time.monotonic()
            await next_matching(updates, lambda s: set(s) == {"local:1"}, ttl + 2)
            print(f"\nkilled registrant gone from discovery after {time.monotonic() - start:.2f} s")

            # Revoked elsewhere: it vanishes, then the registration puts it back.
            first = reg.lease_id
            async with aetcd.Client(etcd_server.endpoint) as other:
                await other.revoke(first)
            await next_matching(updates, lambda s: not s, 5)
            await next_matching(updates, lambda s: set(s) == {"local:1"}, ttl + 3)
            async with asyncio.timeout(2):
                await reg.restored()  # the watch may see the put before the task is done
            assert reg.registrations == 2 and reg.lease_id != first
        await next_matching(updates, lambda s: not s, 5)


async def test_converges_after_churn(
    etcd_server: Any, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    svc = etcd_prefix + "svc"
    ttl = 2
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(aetcd.Client(etcd_server.endpoint)) for _ in range(8)
        ]
        regs = {}
        for i in range(5):
            regs[f"old:{i}"] = await stack.enter_async_context(
                clients[i].register(svc, f"old:{i}", ttl=ttl, metadata=i)
            )
        async with etcd_client.discover(svc) as d:
            updates = d.updates()
            assert set(d.instances) == set(regs)
            # Two leave cleanly, two die (their client stops keeping the lease alive).
            await regs["old:0"].__aexit__(None, None, None)
            await regs["old:1"].__aexit__(None, None, None)
            await clients[2].close()
            await clients[3].close()
            # Three new ones join.
            for i in range(3):
                await stack.enter_async_context(
                    clients[5 + i].register(svc, f"new:{i}", ttl=ttl, metadata={"n": i})
                )
            expected = {"old:4", "new:0", "new:1", "new:2"}
            start = time.monotonic()
            final = await next_matching(updates, lambda s: set(s) == expected, ttl + 3)
            took = time.monotonic() - start
            fresh = await etcd_client.get(svc + "/", prefix=True)
            assert final == {i.addr: i for i in (decode_endpoint(kv.value) for kv in fresh.kvs)}
            assert final["new:1"].metadata == {"n": 1} and final["old:4"].metadata == 4
            print(f"\nconverged {took:.2f} s after the churn")


async def test_compaction_while_behind_relists(
    etcd_server_factory: EtcdServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aetcd")
    server = await etcd_server_factory()
    async with (
        Proxy(server.client_port) as proxy,
        aetcd.Client(proxy.endpoint, timeout=2) as watcher,
        aetcd.Client(server.endpoint, timeout=2) as writer,
        contextlib.AsyncExitStack() as stack,
    ):
        a = await stack.enter_async_context(writer.register("svc", "a:1", ttl=30))
        async with Discovery(watcher, "svc") as d:
            updates = d.updates()
            assert set(await anext(updates)) == {"a:1"}
            proxy.block()  # the discovery's watch is cut off from here on
            await stack.enter_async_context(writer.register("svc", "b:1", ttl=30, metadata="B"))
            await a.__aexit__(None, None, None)
            await writer.put("svc/c:1", encode_endpoint("c:1"))
            last = await writer.put("elsewhere", "x")
            await writer.compact(last.header.revision)
            await server.restart()
            proxy.unblock()
            instances = await next_matching(updates, lambda s: set(s) == {"b:1", "c:1"}, 30)
            assert instances["b:1"] == Instance("b:1", "B")
            assert d._mirror.resyncs == 1 and d.revision >= last.header.revision
            # And it follows the watch again afterwards.
            await writer.delete("svc/c:1")
            assert set(await next_matching(updates, lambda s: "c:1" not in s, 10)) == {"b:1"}
    assert any("compacted" in r.message for r in caplog.records)
