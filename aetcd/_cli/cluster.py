"""``member list|add|remove|update|promote``, ``endpoint status|health|hashkv``
and ``move-leader``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import EtcdError, PermissionDeniedError
from ..types import Member, Status
from .common import EXIT_ERROR, EXIT_OK, CommandError, Commands, add_flag, hex_id, non_negative_int
from .output import format_duration, header_json, humanize_bytes, no_table

if TYPE_CHECKING:
    from .context import Context

_T = TypeVar("_T")


def _peer_urls(text: str) -> list[str]:
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise argparse.ArgumentTypeError("give at least one peer URL")
    return urls


# -- member --------------------------------------------------------------------------


def _member_row(m: Member) -> list[str]:
    return [
        f"{m.id:x}",
        "started" if m.started else "unstarted",
        m.name,
        ",".join(m.peer_urls),
        ",".join(m.client_urls),
        "true" if m.is_learner else "false",
    ]


def _member_json(m: Member) -> dict[str, Any]:
    doc: dict[str, Any] = {"ID": m.id, "name": m.name, "peerURLs": m.peer_urls}
    if m.client_urls:
        doc["clientURLs"] = m.client_urls
    if m.is_learner:
        doc["isLearner"] = True
    return doc


async def cmd_member_list(ctx: Context, args: argparse.Namespace) -> int:
    members = await ctx.client.members(linearizable=args.consistency == "l")
    if ctx.out.json:
        ctx.out.dump({"members": [_member_json(m) for m in members]})
        return EXIT_OK
    header = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"]
    ctx.out.rows(header, [_member_row(m) for m in members])
    return EXIT_OK


async def _cluster_id(ctx: Context) -> int:
    return (await ctx.client.status()).header.cluster_id


async def cmd_member_add(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "member add")
    client = ctx.client
    added = await client.member_add(args.peer_urls, learner=args.learner)
    members = await client.members(linearizable=True)
    cluster_id = await _cluster_id(ctx)
    if ctx.out.json:
        ctx.out.dump(
            {
                "header": {"cluster_id": cluster_id},
                "member": _member_json(added),
                "members": [_member_json(m) for m in members],
            }
        )
        return EXIT_OK
    initial: list[str] = []
    for m in members:
        name = args.name if m.id == added.id else m.name
        initial.extend(f"{name}={url}" for url in m.peer_urls)
    out = ctx.out
    out.line(f"Member {added.id:16x} added to cluster {cluster_id:16x}")
    out.line()
    out.line(f'ETCD_NAME="{args.name}"')
    out.line(f'ETCD_INITIAL_CLUSTER="{",".join(initial)}"')
    out.line(f'ETCD_INITIAL_ADVERTISE_PEER_URLS="{",".join(added.peer_urls)}"')
    out.line('ETCD_INITIAL_CLUSTER_STATE="existing"')
    return EXIT_OK


async def _member_change(
    ctx: Context, verb: str, call: Callable[[], Awaitable[list[Member]]], member_id: int
) -> int:
    no_table(ctx.out, f"member {verb}")
    members = await call()
    cluster_id = await _cluster_id(ctx)
    if ctx.out.json:
        ctx.out.dump(
            {
                "header": {"cluster_id": cluster_id},
                "members": [_member_json(m) for m in members],
            }
        )
    else:
        where = "from" if verb == "removed" else "in"
        ctx.out.line(f"Member {member_id:16x} {verb} {where} cluster {cluster_id:16x}")
    return EXIT_OK


async def cmd_member_remove(ctx: Context, args: argparse.Namespace) -> int:
    return await _member_change(ctx, "removed", lambda: ctx.client.member_remove(args.id), args.id)


async def cmd_member_promote(ctx: Context, args: argparse.Namespace) -> int:
    return await _member_change(
        ctx, "promoted", lambda: ctx.client.member_promote(args.id), args.id
    )


async def cmd_member_update(ctx: Context, args: argparse.Namespace) -> int:
    return await _member_change(
        ctx, "updated", lambda: ctx.client.member_update(args.id, args.peer_urls), args.id
    )


# -- endpoint ------------------------------------------------------------------------


async def endpoints_of(ctx: Context, args: argparse.Namespace) -> list[str]:
    """``--endpoints``, or with ``--cluster`` every member's client URLs."""
    if not getattr(args, "cluster", False):
        return list(ctx.settings.endpoints)
    members = await ctx.client.members()
    urls = [url for m in members for url in m.client_urls]
    if not urls:
        raise CommandError("no member publishes a client URL")
    return urls


async def _each(
    endpoints: list[str], call: Callable[[str], Awaitable[_T]]
) -> list[tuple[str, _T | EtcdError]]:
    """Run *call* for every endpoint concurrently; errors are returned, not raised."""

    async def one(ep: str) -> _T | EtcdError:
        try:
            return await call(ep)
        except EtcdError as exc:
            return exc

    results = await asyncio.gather(*(one(ep) for ep in endpoints))
    return list(zip(endpoints, results, strict=True))


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _status_json(ep: str, st: Status) -> dict[str, Any]:
    status = {
        "header": header_json(st.header),
        "version": st.version,
        "dbSize": st.db_size,
        "leader": st.leader,
        "raftIndex": st.raft_index,
        "raftTerm": st.raft_term,
        "raftAppliedIndex": st.raft_applied_index,
        "errors": st.errors,
        "dbSizeInUse": st.db_size_in_use,
        "isLearner": st.is_learner,
    }
    return {"Endpoint": ep, "Status": {k: v for k, v in status.items() if v not in (0, [], False)}}


async def cmd_endpoint_status(ctx: Context, args: argparse.Namespace) -> int:
    endpoints = await endpoints_of(ctx, args)
    results = await _each(endpoints, lambda ep: ctx.client.status(ep))
    ok: list[tuple[str, Status]] = []
    failed = False
    for ep, res in results:
        if isinstance(res, EtcdError):
            _warn(f"Failed to get the status of endpoint {ep} ({res.message})")
            failed = True
        else:
            ok.append((ep, res))
    if ctx.out.json:
        ctx.out.dump([_status_json(ep, st) for ep, st in ok])
    else:
        header = [
            "ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
            "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS",
        ]  # fmt: skip
        rows = [
            [
                ep,
                f"{st.member_id:x}",
                st.version,
                humanize_bytes(st.db_size),
                str(st.is_leader).lower(),
                str(st.is_learner).lower(),
                str(st.raft_term),
                str(st.raft_index),
                str(st.raft_applied_index),
                ", ".join(st.errors),
            ]
            for ep, st in ok
        ]
        ctx.out.rows(header, rows)
    return EXIT_ERROR if failed else EXIT_OK


async def _health(ctx: Context, ep: str) -> tuple[bool, float, str]:
    client = ctx.member_client(ep)
    start = time.perf_counter()
    try:
        await client.get("health")
    except PermissionDeniedError:
        pass  # the member answered, through consensus: it is healthy
    except EtcdError as exc:
        return False, time.perf_counter() - start, exc.message
    took = time.perf_counter() - start
    try:
        alarms = await client.alarms()
    except EtcdError as exc:
        return False, took, exc.message
    if alarms:
        names = ", ".join(sorted({a.type.name for a in alarms}))
        return False, took, f"Active Alarm(s): {names}"
    return True, took, ""


async def cmd_endpoint_health(ctx: Context, args: argparse.Namespace) -> int:
    endpoints = await endpoints_of(ctx, args)
    checks = await asyncio.gather(*(_health(ctx, ep) for ep in endpoints))
    rows = list(zip(endpoints, checks, strict=True))
    out = ctx.out
    if out.json:
        docs = []
        for ep, (healthy, took, error) in rows:
            doc: dict[str, Any] = {
                "endpoint": ep,
                "health": healthy,
                "took": format_duration(took),
            }
            if error:
                doc["error"] = error
            docs.append(doc)
        out.dump(docs)
    elif out.table:
        out.render_table(
            ["ENDPOINT", "HEALTH", "TOOK", "ERROR"],
            [
                [ep, str(healthy).lower(), format_duration(took), error]
                for ep, (healthy, took, error) in rows
            ],
        )
    else:
        for ep, (healthy, took, error) in rows:
            if healthy:
                out.line(
                    f"{ep} is healthy: successfully committed proposal: "
                    f"took = {format_duration(took)}"
                )
            else:
                out.line(f"{ep} is unhealthy: failed to commit proposal: {error}")
    if not all(healthy for _, (healthy, _, _) in rows):
        out.flush()
        raise CommandError("unhealthy cluster")
    return EXIT_OK


async def cmd_endpoint_hashkv(ctx: Context, args: argparse.Namespace) -> int:
    endpoints = await endpoints_of(ctx, args)
    results = await _each(endpoints, lambda ep: ctx.client.hash_kv(args.rev, endpoint=ep))
    failed = False
    rows = []
    docs = []
    for ep, res in results:
        if isinstance(res, EtcdError):
            _warn(f"Failed to get the hash of endpoint {ep} ({res.message})")
            failed = True
            continue
        rows.append([ep, str(res.hash), str(res.hash_revision), str(res.compact_revision)])
        docs.append(
            {
                "Endpoint": ep,
                "HashKV": {
                    "header": header_json(res.header),
                    "hash": res.hash,
                    "compact_revision": res.compact_revision,
                    "hash_revision": res.hash_revision,
                },
            }
        )
    if ctx.out.json:
        ctx.out.dump(docs)
    else:
        ctx.out.rows(["ENDPOINT", "HASH", "HASH REVISION", "COMPACT REVISION"], rows)
    return EXIT_ERROR if failed else EXIT_OK


async def cmd_move_leader(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "move-leader")
    before = (await ctx.client.status()).leader
    await ctx.client.move_leader(args.id)
    if ctx.out.json:
        ctx.out.dump({"from": before, "to": args.id})
    else:
        ctx.out.line(f"Leadership transferred from {before:x} to {args.id:x}")
    return EXIT_OK


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    group = commands.group(
        sub,
        "member",
        "list and change the cluster's members",
        description="Member commands. Member ids are hexadecimal, as `member list` shows them.",
    )
    p = commands.add(
        group,
        "list",
        cmd_member_list,
        "list the members",
        description="List the members: ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER\n"
        "(-w table for a table, -w json for JSON).",
    )
    p.add_argument(
        "--consistency",
        choices=("l", "s"),
        default="s",
        help="s: the answering member's view (default), l: linearizable",
    )

    p = commands.add(
        group,
        "add",
        cmd_member_add,
        "add a member",
        description="Add member NAME listening on --peer-urls, then print the settings to\n"
        "start it with. Prefer --learner: a learner cannot cost quorum while it\n"
        "catches up; promote it afterwards.",
    )
    p.add_argument("name", help="the new member's name")
    p.add_argument(
        "--peer-urls",
        type=_peer_urls,
        required=True,
        metavar="URL,...",
        help="comma separated peer URLs of the new member",
    )
    add_flag(p, "--learner", help="add a non-voting learner")

    p = commands.add(group, "remove", cmd_member_remove, "remove a member")
    p.add_argument("id", type=hex_id, help="member id (hex)")

    p = commands.add(group, "promote", cmd_member_promote, "promote a learner to voting member")
    p.add_argument("id", type=hex_id, help="member id (hex)")

    p = commands.add(group, "update", cmd_member_update, "change a member's peer URLs")
    p.add_argument("id", type=hex_id, help="member id (hex)")
    p.add_argument(
        "--peer-urls",
        type=_peer_urls,
        required=True,
        metavar="URL,...",
        help="comma separated new peer URLs",
    )

    group = commands.group(
        sub,
        "endpoint",
        "status, health and hashes of each endpoint",
        description="Endpoint commands: one row per endpoint of --endpoints (or, with\n"
        "--cluster, per client URL of every member).",
    )
    p = commands.add(
        group,
        "status",
        cmd_endpoint_status,
        "print each endpoint's status",
        description="Print each endpoint's status: member id, version, database size, leadership,\n"
        "raft term and indexes, errors. Exit status 1 if any endpoint did not answer.",
    )
    add_flag(p, "--cluster", help="use every member's client URLs")
    p = commands.add(
        group,
        "health",
        cmd_endpoint_health,
        "check each endpoint's health",
        description="Check each endpoint: a linearizable read must succeed (it goes through\n"
        "consensus) and no alarm may be raised. Exit status 1 if any is unhealthy.",
    )
    add_flag(p, "--cluster", help="use every member's client URLs")
    p = commands.add(group, "hashkv", cmd_endpoint_hashkv, "print each endpoint's KV hash")
    add_flag(p, "--cluster", help="use every member's client URLs")
    p.add_argument(
        "--rev", type=non_negative_int, default=0, help="hash up to this revision (0: latest)"
    )

    p = commands.add(sub, "move-leader", cmd_move_leader, "transfer leadership to a member")
    p.add_argument("id", type=hex_id, help="the new leader's member id (hex)")
