"""``snapshot save``, ``defrag``, ``alarm list|disarm`` and ``downgrade validate|enable|cancel``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from ..errors import EtcdError
from ..types import Alarm, DowngradeAction
from .cluster import endpoints_of
from .common import EXIT_ERROR, EXIT_OK, CommandError, Commands, add_flag
from .output import header_json, humanize_bytes, no_table

if TYPE_CHECKING:
    from .context import Context


class Progress:
    """A one-line textual progress bar on a terminal (nothing elsewhere)."""

    WIDTH = 30

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int | None, *, force: bool = False) -> None:
        """Redraw, at most ten times a second (unless *force*)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.WIDTH)
            bar = "=" * filled + (">" if filled < self.WIDTH else "")
            text = (
                f"\r[{bar.ljust(self.WIDTH)}] {fraction * 100:5.1f}% "
                f"{humanize_bytes(done)} / {humanize_bytes(total)}"
            )
        else:
            text = f"\r{humanize_bytes(done)} received"
        self.stream.write(text.ljust(60))
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """End the progress line."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


async def cmd_snapshot_save(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "snapshot save")
    path: str = args.path
    endpoint = ctx.settings.endpoints[0]
    temp = f"{path}.part"
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty())
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise CommandError(f"cannot create {temp}: {exc.strerror or exc}") from None
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async with ctx.client.snapshot(endpoint=endpoint) as stream:
                async for chunk in stream:
                    f.write(chunk)
                    size += len(chunk)
                    remaining = stream.remaining_bytes
                    total = None if remaining is None else size + remaining
                    progress.update(size, total)
                progress.update(size, size, force=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        progress.close()
    if ctx.out.json:
        ctx.out.dump({"path": path, "size": size, "endpoint": endpoint})
    else:
        ctx.out.line(f"Snapshot saved at {path}")
    return EXIT_OK


async def cmd_defrag(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "defrag")
    failed = False
    for ep in await endpoints_of(ctx, args):
        try:
            await ctx.client.defragment(endpoint=ep)
        except EtcdError as exc:
            print(f"Failed to defragment etcd member[{ep}] ({exc.message})", file=sys.stderr)
            failed = True
            continue
        ctx.out.line(f"Finished defragmenting etcd member[{ep}]")
    return EXIT_ERROR if failed else EXIT_OK


def _print_alarms(ctx: Context, alarms: list[Alarm]) -> None:
    if ctx.out.json:
        ctx.out.dump({"alarms": [{"memberID": a.member_id, "alarm": int(a.type)} for a in alarms]})
        return
    for alarm in alarms:
        ctx.out.line(f"memberID:{alarm.member_id} alarm:{alarm.type.name}")


async def cmd_alarm_list(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "alarm list")
    _print_alarms(ctx, await ctx.client.alarms())
    return EXIT_OK


async def cmd_alarm_disarm(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "alarm disarm")
    _print_alarms(ctx, await ctx.client.disarm_alarms())
    return EXIT_OK


async def cmd_downgrade(ctx: Context, args: argparse.Namespace) -> int:
    action: DowngradeAction = args.action
    name = action.name.lower()
    no_table(ctx.out, f"downgrade {name}")
    res = await ctx.client.downgrade(action, getattr(args, "version", None))
    if ctx.out.json:
        ctx.out.dump({"header": header_json(res.header), "version": res.version})
    else:
        ctx.out.line(f"Downgrade {name} success, cluster version {res.version}")
    return EXIT_OK


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    group = commands.group(sub, "snapshot", "save a snapshot of the database")
    p = commands.add(
        group,
        "save",
        cmd_snapshot_save,
        "save a member's database to a file",
        description="Stream a consistent copy of the first endpoint's database to PATH (written\n"
        "to PATH.part, checksum-verified, then renamed). Shows a progress bar when\n"
        "stderr is a terminal. Inspect or restore the file with etcdutl.",
    )
    p.add_argument("path", help="the file to write")

    p = commands.add(
        sub,
        "defrag",
        cmd_defrag,
        "defragment each endpoint's database",
        description="Defragment the members of --endpoints (or all with --cluster), one at a\n"
        "time. A member blocks reads and writes while it defragments.",
    )
    add_flag(p, "--cluster", help="defragment every member")

    group = commands.group(sub, "alarm", "list or disarm alarms")
    commands.add(group, "list", cmd_alarm_list, "list the raised alarms")
    commands.add(group, "disarm", cmd_alarm_disarm, "disarm every raised alarm")

    group = commands.group(sub, "downgrade", "validate, enable or cancel a cluster downgrade")
    for action, summary in (
        (DowngradeAction.VALIDATE, "check that the cluster can be downgraded to VERSION"),
        (DowngradeAction.ENABLE, "start downgrading the cluster version to VERSION"),
    ):
        p = commands.add(group, action.name.lower(), cmd_downgrade, summary)
        p.add_argument("version", help='the target version, one minor below ("3.4")')
        p.set_defaults(action=action)
    p = commands.add(group, "cancel", cmd_downgrade, "cancel the downgrade in progress")
    p.set_defaults(action=DowngradeAction.CANCEL)
