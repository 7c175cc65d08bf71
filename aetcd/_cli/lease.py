"""``lease grant|revoke|timetolive|list|keep-alive``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Any

from ..errors import EtcdError, LeaseNotFoundError
from .common import EXIT_OK, CommandError, Commands, add_flag, hex_id, positive_int
from .output import b64, no_table

if TYPE_CHECKING:
    from .context import Context


async def cmd_grant(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "lease grant")
    lease = await ctx.client.grant(args.ttl)
    if ctx.out.json:
        ctx.out.dump({"ID": lease.id, "TTL": lease.ttl})
    else:
        ctx.out.line(f"lease {lease.id:016x} granted with TTL({lease.ttl}s)")
    return EXIT_OK


async def cmd_revoke(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "lease revoke")
    await ctx.client.revoke(args.id)
    if ctx.out.json:
        ctx.out.dump({"ID": args.id})
    else:
        ctx.out.line(f"lease {args.id:016x} revoked")
    return EXIT_OK


async def cmd_timetolive(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "lease timetolive")
    out = ctx.out
    try:
        info = await ctx.client.time_to_live(args.id, keys=args.keys)
    except LeaseNotFoundError:
        if out.json:
            out.dump({"id": args.id, "ttl": -1})
        else:
            out.line(f"lease {args.id:016x} already expired")
        return EXIT_OK
    if out.json:
        doc: dict[str, Any] = {"id": info.id, "ttl": info.ttl, "granted-ttl": info.granted_ttl}
        if args.keys:
            doc["keys"] = [b64(k) for k in info.keys]
        out.dump(doc)
        return EXIT_OK
    text = f"lease {info.id:016x} granted with TTL({info.granted_ttl}s), remaining({info.ttl}s)"
    if args.keys:
        names = " ".join(out.text(k).decode("utf-8", "surrogateescape") for k in info.keys)
        text += f", attached keys([{names}])"
    out.line(text)
    return EXIT_OK


async def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "lease list")
    ids = await ctx.client.leases()
    if ctx.out.json:
        ctx.out.dump({"leases": [{"ID": i} for i in ids]})
        return EXIT_OK
    ctx.out.line(f"found {len(ids)} leases")
    for lease_id in ids:
        ctx.out.line(f"{lease_id:016x}")
    return EXIT_OK


async def cmd_keepalive(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "lease keep-alive")
    out = ctx.out

    def show(ttl: int) -> None:
        if out.json:
            out.dump({"ID": args.id, "TTL": ttl})
        else:
            out.line(f"lease {args.id:016x} keepalived with TTL({ttl})")
        out.flush()

    if args.once:
        try:
            show(await ctx.client.keepalive_once(args.id))
        except LeaseNotFoundError:
            raise CommandError(f"lease {args.id:016x} expired or revoked") from None
        return EXIT_OK
    async with contextlib.AsyncExitStack() as stack:
        while True:
            try:
                lease = await stack.enter_async_context(ctx.client.keepalive(args.id))
                break
            except LeaseNotFoundError:
                raise CommandError(f"lease {args.id:016x} expired or revoked") from None
            except EtcdError as exc:
                if not exc.retryable:
                    raise
                print(f"keep-alive failed, retrying: {exc.message}", file=sys.stderr, flush=True)
                await asyncio.sleep(1.0)
        # Print every renewal of the client's keep-alive stream until the lease is lost.
        renewals: asyncio.Queue[int] = asyncio.Queue()
        lease.on_renewed(renewals.put_nowait)
        show(lease.ttl)  # entering renewed it once
        lost = asyncio.ensure_future(lease.lost())
        try:
            while not lost.done():
                renewal = asyncio.ensure_future(renewals.get())
                await asyncio.wait([renewal, lost], return_when=asyncio.FIRST_COMPLETED)
                if renewal.done():
                    show(renewal.result())
                else:
                    renewal.cancel()
        finally:
            lost.cancel()
            lease.on_renewed(None)
    reason = lease.lost_reason
    if reason is not None and isinstance(reason.__cause__, LeaseNotFoundError):
        raise CommandError(f"lease {args.id:016x} expired or revoked")
    raise CommandError(str(lease.lost_reason))


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    group = commands.group(
        sub,
        "lease",
        "grant, revoke, inspect and renew leases",
        description="Lease commands. Lease ids are hexadecimal, as etcdctl prints them.",
    )
    p = commands.add(group, "grant", cmd_grant, "grant a lease of TTL seconds")
    p.add_argument("ttl", type=positive_int, help="time to live, seconds")

    p = commands.add(group, "revoke", cmd_revoke, "revoke a lease (its keys are deleted)")
    p.add_argument("id", type=hex_id, help="lease id (hex)")

    p = commands.add(
        group,
        "timetolive",
        cmd_timetolive,
        "show a lease's TTL and remaining time",
        aliases=["ttl"],
    )
    p.add_argument("id", type=hex_id, help="lease id (hex)")
    add_flag(p, "--keys", help="also list the keys attached to the lease")

    commands.add(group, "list", cmd_list, "list every lease")

    p = commands.add(
        group,
        "keep-alive",
        cmd_keepalive,
        "keep a lease alive until interrupted",
        aliases=["keepalive"],
        description="Renew lease ID every third of its TTL and print each renewal.\n\n"
        "Ctrl-C or SIGTERM stop renewing: the lease is NOT revoked, it is left to\n"
        "expire after its TTL (revoke it with `aetcd lease revoke ID`).",
    )
    p.add_argument("id", type=hex_id, help="lease id (hex)")
    add_flag(p, "--once", help="renew once and exit")
