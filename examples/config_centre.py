"""Configuration centre with hot reload.

A service keeps its settings in etcd under one prefix. At start-up it reads
them all and from then on follows every change, without polling and without
restarting: ``client.config(prefix)`` returns an
:class:`aetcd.recipes.ConfigMirror`, a read-only mapping that a background
watch keeps current, and ``cfg.changes()`` streams each change in revision
order so the service can react to it (here: print it and rebuild its
settings).

What it shows:

* the mirror is complete before the ``async with`` body runs (one read of the
  prefix at revision R, then a watch from R + 1: nothing is missed in between);
* changes arrive in order, each once, including deletions;
* ``cfg.wait_for(revision)`` waits until the mirror has caught up with a write
  you made, so you can read your own writes.

An "operator" task plays the admin: it changes a setting a few times, adds one
and removes one.

Run it against an etcd you have (``--endpoint HOST:PORT``, default
127.0.0.1:2379) or let it start one (``--embedded``)::

    python examples/config_centre.py --embedded --rounds 3

Every key it writes is under ``examples/config_centre/``, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import aetcd
from aetcd.recipes import ConfigMirror

PREFIX = "examples/config_centre/"
INITIAL = {
    "db/url": "postgres://db.internal/app",
    "db/pool": "10",
    "feature/search": "on",
}


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


class Settings:
    """What the service actually uses, rebuilt from the mirror on every change."""

    def __init__(self, cfg: ConfigMirror) -> None:
        self.reload(cfg)

    def reload(self, cfg: ConfigMirror) -> None:
        self.db_url = cfg.get("db/url", "")
        self.pool_size = int(cfg.get("db/pool", "5"))
        self.features = sorted(k.removeprefix("feature/") for k in cfg if k.startswith("feature/"))

    def __str__(self) -> str:
        return f"db={self.db_url} pool={self.pool_size} features={self.features}"


async def operator(client: aetcd.Client, rounds: int) -> int:
    """Change the configuration like an admin would; returns the last revision written."""
    revision = 0
    for i in range(rounds):
        await asyncio.sleep(0.05)
        revision = (await client.put(PREFIX + "db/pool", str(10 * (i + 2)))).header.revision
    revision = (await client.put(PREFIX + "feature/dark-mode", "on")).header.revision
    revision = (await client.delete(PREFIX + "feature/search")).header.revision
    return revision


async def run(client: aetcd.Client, rounds: int) -> None:
    await client.delete(PREFIX, prefix=True)
    for key, value in INITIAL.items():
        await client.put(PREFIX + key, value)

    # decode=bytes.decode: values are str in the mirror (the default keeps bytes).
    async with client.config(PREFIX, decode=bytes.decode) as cfg:
        settings = Settings(cfg)
        print(f"loaded {len(cfg)} settings at revision {cfg.revision}: {settings}", flush=True)

        async with cfg.changes() as changes:
            writer = asyncio.create_task(operator(client, rounds))
            expected = rounds + 2  # the pool changes, one addition, one removal
            seen = 0
            async for change in changes:
                if change.type is aetcd.EventType.PUT:
                    print(
                        f"reload: {change.key} = {change.value!r} (revision {change.revision})",
                        flush=True,
                    )
                else:
                    print(f"reload: {change.key} removed (revision {change.revision})", flush=True)
                settings.reload(cfg)
                print(f"  settings now: {settings}", flush=True)
                seen += 1
                if seen == expected:
                    break
            last = await writer

        await cfg.wait_for(last, timeout=10)  # read-your-writes: the mirror is at `last`
        print(f"final config at revision {cfg.revision}: {dict(sorted(cfg.items()))}", flush=True)
        assert cfg["db/pool"] == str(10 * (rounds + 1)) and "feature/search" not in cfg


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:2379", help="etcd to use (host:port)")
    parser.add_argument("--embedded", action="store_true", help="start a private etcd instead")
    parser.add_argument("--rounds", type=int, default=3, help="how many times the pool changes")
    args = parser.parse_args(argv)
    async with etcd_endpoint(args) as endpoint, aetcd.Client(endpoint) as client:
        try:
            await run(client, args.rounds)
        finally:
            await client.delete(PREFIX, prefix=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
