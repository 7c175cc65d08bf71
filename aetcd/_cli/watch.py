"""``watch``: print (or act on) every change of a key, a prefix or a range."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from ..types import Event, EventType, WatchResponse
from .common import EXIT_OK, Commands, UsageError, add_flag, arg_bytes, non_negative_int
from .output import header_json, kv_json, no_table

if TYPE_CHECKING:
    from .context import Context


def response_json(resp: WatchResponse) -> dict[str, Any]:
    """A watch response the way etcdctl's json output shows it."""
    events = []
    for event in resp.events:
        item: dict[str, Any] = {}
        if event.type is EventType.DELETE:
            item["type"] = int(event.type)
        item["kv"] = kv_json(event.kv)
        if event.prev_kv is not None:
            item["prev_kv"] = kv_json(event.prev_kv)
        events.append(item)
    return {
        "Header": header_json(resp.header),
        "Events": events,
        "CompactRevision": resp.compact_revision,
        "Canceled": False,
        "Created": False,
    }


async def _run_command(command: list[str], event: Event) -> None:
    env = {
        **os.environ,
        "ETCD_WATCH_REVISION": str(event.kv.mod_revision),
        "ETCD_WATCH_KEY": event.kv.key.decode("utf-8", "surrogateescape"),
        "ETCD_WATCH_EVENT_TYPE": event.type.name,
        "ETCD_WATCH_VALUE": event.kv.value.decode("utf-8", "surrogateescape"),
    }
    try:
        proc = await asyncio.create_subprocess_exec(*command, env=env)
    except OSError as exc:
        print(f"command {command[0]!r} error ({exc})", file=sys.stderr, flush=True)
        return
    try:
        code = await proc.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await asyncio.shield(proc.wait())
        raise
    if code != 0:
        print(f"command {command[0]!r} exited with status {code}", file=sys.stderr, flush=True)


async def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "watch")
    if args.key is None:
        raise UsageError("watch needs a key (use --prefix '' to watch every key)")
    if args.prefix and args.range_end is not None:
        raise UsageError("watch: a range end cannot be combined with --prefix")
    out = ctx.out
    command: list[str] = args.exec_command
    watch = ctx.client.watch(
        arg_bytes(args.key),
        prefix=args.prefix,
        range_end=None if args.range_end is None else arg_bytes(args.range_end),
        start_revision=args.rev,
        prev_kv=args.prev_kv,
        progress_notify=args.progress_notify,
    )
    async with watch:
        async for resp in watch.responses():
            if out.json:
                out.dump(response_json(resp))
            elif resp.is_progress_notify:
                out.line(f"progress notify: {resp.header.revision}")
            for event in resp.events:
                if not out.json:
                    out.line(event.type.name)
                    if event.prev_kv is not None:
                        out.kv(event.prev_kv)
                    out.kv(event.kv)
                if command:
                    out.flush()
                    await _run_command(command, event)
            out.flush()
    return EXIT_OK


WATCH_HELP = """\
Watch a key, the keys with a prefix, or a range, and print every change:
the event type (PUT or DELETE), then the previous key and value (--prev-kv),
then the key and its new value, each on its own line. Runs until interrupted
(Ctrl-C or SIGTERM end it cleanly, exit status 130 / 143).

With `-- COMMAND [ARGS...]` the command runs after each event, with
ETCD_WATCH_REVISION, ETCD_WATCH_KEY, ETCD_WATCH_EVENT_TYPE and ETCD_WATCH_VALUE
in its environment.

--rev replays history from that revision first, so nothing written after it
is missed.
"""


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    p = commands.add(
        sub, "watch", cmd_watch, "watch a key or prefix for changes", description=WATCH_HELP
    )
    p.add_argument("key", nargs="?", help="the key, prefix, or start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    add_flag(p, "--prefix", help="watch every key starting with KEY")
    p.add_argument(
        "--rev", type=non_negative_int, default=0, help="start from this revision (0: now)"
    )
    add_flag(p, "--prev-kv", help="print the previous key-value of each change")
    add_flag(p, "--progress-notify", help="print periodic progress notifications")
    p.set_defaults(takes_command=True, exec_command=[])
