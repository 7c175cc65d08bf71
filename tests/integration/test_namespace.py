"""namespace="app1/": every key prefixed transparently, nothing outside visible."""

from __future__ import annotations

from typing import Any

import aetcd
from aetcd import Compare, EventType, Op


async def test_namespace_kv_txn_watch_and_recipes(etcd_server: Any, etcd_prefix: str) -> None:
    ns = etcd_prefix + "ns/"
    async with (
        aetcd.Client(etcd_server.endpoint) as raw,
        aetcd.Client(etcd_server.endpoint, namespace=ns) as client,
    ):
        await raw.put(etcd_prefix + "outside", "x")
        await raw.put(etcd_prefix + "ns", "sibling")  # shares the prefix text, not the namespace
        put = await client.put("a", "1", prev_kv=True)
        assert put.prev_kv is None
        assert (await raw.get(ns + "a")).kvs[0].value == b"1"
        again = await client.put("a", "2", prev_kv=True)
        assert again.prev_kv is not None and again.prev_kv.key == b"a"
        got = await client.get("a")
        assert got.kvs[0].key == b"a"
        await client.put("b/1", "x")
        await client.put(b"\xff", "y")
        everything = await client.get("", prefix=True)
        assert [kv.key for kv in everything] == [b"a", b"b/1", b"\xff"]
        assert [kv.key for kv in await client.get("b", from_key=True)] == [b"b/1", b"\xff"]
        assert [kv.key for kv in await client.get("a", range_end="b0")] == [b"a", b"b/1"]

        res = await client.txn(
            compare=[Compare.value("a") == "2", Compare.version("b/", prefix=True) > 0],
            success=[Op.get("b/", prefix=True), Op.txn([], [Op.put("c", "3", prev_kv=True)])],
        )
        assert res.succeeded
        inner_get = res.responses[0]
        assert isinstance(inner_get, aetcd.GetResult) and inner_get.kvs[0].key == b"b/1"
        assert (await raw.get(ns + "c")).count == 1

        async with client.watch("", prefix=True, prev_kv=True) as watch:
            await raw.put(etcd_prefix + "outside", "not seen")
            await client.put("a", "3")
            await client.delete("b/1")
            events = []
            async for event in watch:
                events.append(event)
                if len(events) == 2:
                    break
        assert [(e.type, e.kv.key) for e in events] == [
            (EventType.PUT, b"a"),
            (EventType.DELETE, b"b/1"),
        ]
        assert events[0].prev_kv is not None and events[0].prev_kv.key == b"a"

        async with client.lock("L") as lock:
            assert lock.key.startswith(b"L/")
            assert (await raw.get(ns + "L/", prefix=True)).count == 1

        deleted = await client.delete("", prefix=True, prev_kv=True)
        assert {kv.key for kv in deleted.prev_kvs} == {b"a", b"c", b"\xff"}
        assert (await raw.get(etcd_prefix + "outside")).count == 1
        assert (await raw.get(etcd_prefix + "ns")).count == 1
