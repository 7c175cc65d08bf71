"""ConfigMirror: equals a fresh range, streams every change in order, decodes values,
survives compaction while behind (re-list + diff), bounds slow subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import pytest
from recipe_helpers import Proxy

import aetcd
from aetcd import EventType
from aetcd.recipes.config import ConfigChange, ConfigMirror, SubscriberOverflowError
from aetcd.testing.pytest_plugin import EtcdServerFactory

# How long a mirror may take to see a few writes. Generous: the blocking
# client's run of these tests (tests/sync) hops threads for every watch
# response, and on a loaded box one run once needed more than 5 s.
CATCH_UP = 15.0


async def take(changes: Any, n: int, timeout: float = 10.0) -> list[ConfigChange]:
    out: list[ConfigChange] = []
    async with asyncio.timeout(timeout):
        async for change in changes:
            out.append(change)
            if len(out) == n:
                break
    return out


def snapshot(result: aetcd.GetResult, prefix: str) -> dict[str, bytes]:
    return {kv.key[len(prefix) :].decode(): kv.value for kv in result.kvs}


async def test_populated_before_body_and_mapping(
    etcd_client: aetcd.Client, etcd_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    p = etcd_prefix + "app/"
    await etcd_client.put(p + "db/url", "postgres://x")
    await etcd_client.put(p + "flags", "on")
    await etcd_client.put(p.encode() + b"\xffbad", "skipped")  # not UTF-8: skipped
    last = await etcd_client.put(etcd_prefix + "outside", "no")
    async with ConfigMirror(etcd_client, p) as cfg:
        assert dict(cfg) == {"db/url": b"postgres://x", "flags": b"on"}
        assert cfg["db/url"] == b"postgres://x" and "flags" in cfg and len(cfg) == 2
        assert cfg.get("nope") is None
        assert cfg.revision >= last.header.revision
        with pytest.raises(RuntimeError):
            await cfg.__aenter__()  # already open
    assert any("not valid UTF-8" in r.message for r in caplog.records)
    assert dict(cfg) == {"db/url": b"postgres://x", "flags": b"on"}  # kept after exit
    with pytest.raises(RuntimeError):
        cfg.changes()
    with pytest.raises(TypeError):
        ConfigMirror(etcd_client, p, decode="json")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ConfigMirror(etcd_client, 5)  # type: ignore[arg-type]


async def test_burst_mirror_equals_range_and_changes_in_order(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    p = etcd_prefix + "cfg/"
    for i in range(10):
        await etcd_client.put(p + f"k{i:02d}", f"seed{i}")
    async with ConfigMirror(etcd_client, p) as cfg:
        assert len(cfg) == 10
        one, two = cfg.changes(), cfg.changes()
        rng = random.Random(1234)
        expected: list[tuple[EventType, str, bytes | None, int]] = []

        async def op(i: int) -> None:
            key = f"k{rng.randrange(40):02d}"
            if rng.random() < 0.3:
                res = await etcd_client.delete(p + key)
                if res.deleted:
                    expected.append((EventType.DELETE, key, None, res.header.revision))
            else:
                value = f"v{i}"
                put = await etcd_client.put(p + key, value)
                expected.append((EventType.PUT, key, value.encode(), put.header.revision))

        for start in range(0, 500, 10):  # 500 writes/deletes, 10 at a time
            await asyncio.gather(*(op(i) for i in range(start, start + 10)))
        expected.sort(key=lambda e: e[3])
        await cfg.wait_for(expected[-1][3], timeout=10)
        assert cfg.revision == expected[-1][3]
        fresh = await etcd_client.get(p, prefix=True, revision=cfg.revision)
        assert dict(cfg) == snapshot(fresh, p)
        for sub in (one, two):
            got = await take(sub, len(expected))
            assert [(c.type, c.key, c.value, c.revision) for c in got] == expected
            assert not any(c.resync for c in got)
        # A late subscriber sees only what happens after it subscribed.
        late = cfg.changes()
        res = await etcd_client.put(p + "late", "1")
        (change,) = await take(late, 1)
        assert change == ConfigChange(EventType.PUT, "late", b"1", res.header.revision)
    # Closing the mirror ends every subscriber's iterator.
    assert await take(late, 1, timeout=2) == []


async def test_json_decode_keeps_last_good_value(
    etcd_client: aetcd.Client, etcd_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    p = etcd_prefix + "json/"
    await etcd_client.put(p + "a", '{"x": 1}')
    await etcd_client.put(p + "bad", "{nope")
    async with ConfigMirror(etcd_client, p, decode=json.loads) as cfg:
        assert dict(cfg) == {"a": {"x": 1}}
        assert set(cfg.invalid) == {"bad"}
        changes = cfg.changes()
        await etcd_client.put(p + "a", '{"x": 2}')
        broken = await etcd_client.put(p + "a", "garbage")
        await cfg.wait_for(broken.header.revision, timeout=CATCH_UP)
        assert cfg["a"] == {"x": 2} and isinstance(cfg.invalid["a"], ValueError)
        await etcd_client.put(p + "a", "[1]")
        await etcd_client.put(p + "bad", "3")
        await etcd_client.delete(p + "a")
        got = await take(changes, 4)
        assert [(c.type, c.key, c.value) for c in got] == [
            (EventType.PUT, "a", {"x": 2}),
            (EventType.PUT, "a", [1]),  # the broken value produced no change
            (EventType.PUT, "bad", 3),
            (EventType.DELETE, "a", None),
        ]
        assert dict(cfg) == {"bad": 3} and cfg.invalid == {}
    assert any(
        "cannot decode" in r.message and r.levelno == logging.WARNING for r in caplog.records
    )


async def test_slow_subscriber_overflows_others_unaffected(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    p = etcd_prefix + "slow/"
    async with ConfigMirror(etcd_client, p) as cfg:
        slow, fast = cfg.changes(max_pending=5), cfg.changes()
        for i in range(8):
            last = await etcd_client.put(p + str(i), "x")
        await cfg.wait_for(last.header.revision, timeout=CATCH_UP)
        assert len(await take(fast, 8)) == 8
        held: list[ConfigChange] = []
        with pytest.raises(SubscriberOverflowError) as info:
            async for change in slow:
                held.append(change)
        # Everything up to the gap, then the error.
        assert [c.key for c in held] == [str(i) for i in range(5)] and info.value.limit == 5
        with pytest.raises(aetcd.InvalidArgumentError):
            cfg.changes(max_pending=0)


async def test_client_closed_ends_subscribers_with_error(
    etcd_server: Any, etcd_prefix: str
) -> None:
    client = aetcd.Client(etcd_server.endpoint)
    async with ConfigMirror(client, etcd_prefix) as cfg:
        changes = cfg.changes()
        await client.close()
        with pytest.raises(aetcd.ClientClosedError):
            await take(changes, 1)
        with pytest.raises(aetcd.ClientClosedError):
            await cfg.wait_for(cfg.revision + 1, timeout=5)
    # Leaving the block after the client was closed does not raise.


async def test_compaction_and_restart_while_behind_relists_and_emits_diff(
    etcd_server_factory: EtcdServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aetcd")
    server = await etcd_server_factory()
    async with (
        Proxy(server.client_port) as proxy,
        aetcd.Client(proxy.endpoint, timeout=2) as reader,
        aetcd.Client(server.endpoint, timeout=2) as writer,
    ):
        for key, value in (("keep", "1"), ("change", "old"), ("drop", "x")):
            await writer.put("cfg/" + key, value)
        async with ConfigMirror(reader, "cfg/") as cfg, cfg.changes() as changes:
            proxy.block()  # the mirror's watch is cut off from here on
            await writer.put("cfg/change", "new")
            await writer.delete("cfg/drop")
            await writer.put("cfg/new", "n")
            await writer.put("cfg/brief", "b")
            await writer.delete("cfg/brief")  # lost with the history: never seen
            last = await writer.put("elsewhere", "x")
            await writer.compact(last.header.revision)
            await server.restart()
            proxy.unblock()
            await cfg.wait_for(last.header.revision, timeout=30)
            assert cfg.resyncs == 1
            assert dict(cfg) == {"keep": b"1", "change": b"new", "new": b"n"}
            fresh = await writer.get("cfg/", prefix=True, revision=cfg.revision)
            assert dict(cfg) == snapshot(fresh, "cfg/")
            got = await take(changes, 3)
            assert [(c.type, c.key, c.value) for c in got] == [
                (EventType.DELETE, "drop", None),
                (EventType.PUT, "change", b"new"),
                (EventType.PUT, "new", b"n"),
            ]
            assert all(c.resync and c.revision == cfg.revision for c in got)
            # And it follows the watch again afterwards.
            after = await writer.put("cfg/after", "1")
            (change,) = await take(changes, 1)
            assert (change.key, change.revision, change.resync) == (
                "after",
                after.header.revision,
                False,
            )
    assert any("compacted" in r.message for r in caplog.records)


async def test_client_shortcut_over_a_namespace(etcd_server: Any, etcd_prefix: str) -> None:
    async with aetcd.Client(etcd_server.endpoint, namespace=etcd_prefix) as client:
        await client.put("app/k", "v")
        async with client.config("app/", decode=bytes.decode) as cfg:
            assert isinstance(cfg, ConfigMirror) and dict(cfg) == {"k": "v"}
            changes = cfg.changes()
            res = await client.put("app/k2", "w")
            (change,) = await take(changes, 1)
            assert change == ConfigChange(EventType.PUT, "k2", "w", res.header.revision)
