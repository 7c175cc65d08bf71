"""``lock`` and ``elect``: etcd's distributed lock and leader election.

Both use the key layout of etcd's Go ``concurrency`` package, so they exclude
(and elect against) ``etcdctl lock`` / ``etcdctl elect`` and Go or Python
services using the same names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any, Final

from ..recipes import Lock
from ..recipes.session import DEFAULT_SESSION_TTL
from .common import (
    CommandError,
    Commands,
    UsageError,
    add_flag,
    arg_bytes,
    parse_duration,
    positive_int,
)
from .output import no_table

if TYPE_CHECKING:
    from .context import Context

#: How long a command may take to end on its own after we were interrupted
#: (a Ctrl-C in a terminal reaches it too) before we pass the signal on, and
#: how long it then has before it is killed.
_GRACE: Final = 0.5
_STOP_WAIT: Final = 10.0


async def _stop_child(proc: asyncio.subprocess.Process, signum: int | None) -> None:
    """End *proc*: let it finish, then forward the signal, then kill it."""
    try:
        for delay, sig in ((_GRACE, None), (_STOP_WAIT, signum or signal.SIGTERM)):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
            try:
                async with asyncio.timeout(delay):
                    await proc.wait()
                return
            except TimeoutError:
                pass
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    except asyncio.CancelledError:  # interrupted again: do not wait any longer
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise


def _status(code: int) -> int:
    """A child's exit status as a shell reports it (128+N when killed by signal N)."""
    return code if code >= 0 else 128 - code


async def _run_locked(ctx: Context, lock: Lock, command: list[str]) -> int:
    env = {
        **os.environ,
        "ETCD_LOCK_KEY": lock.key.decode("utf-8", "surrogateescape"),
        "ETCD_LOCK_REV": str(lock.revision),
    }
    ctx.out.flush()
    try:
        proc = await asyncio.create_subprocess_exec(*command, env=env)
    except OSError as exc:
        raise CommandError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
    finished = asyncio.ensure_future(proc.wait())
    lost = asyncio.ensure_future(lock.lost())
    try:
        await asyncio.wait({finished, lost}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _stop_child(proc, ctx.signal)
        raise
    finally:
        lost.cancel()
    if finished.done():
        return _status(finished.result())
    # The session's lease is gone: the command no longer holds the lock.
    await _stop_child(proc, signal.SIGTERM)
    raise CommandError(
        f"lock {lock.name.decode(errors='replace')!r} was lost (its session expired) "
        f"while the command ran; the command was stopped"
    )


async def cmd_lock(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "lock")
    command: list[str] = args.exec_command
    lock = ctx.client.lock(arg_bytes(args.name), ttl=args.ttl)
    await lock.acquire(timeout=args.timeout)
    try:
        if command:
            return await _run_locked(ctx, lock, command)
        if ctx.out.json:
            ctx.out.dump(
                {"key": lock.key.decode("utf-8", "surrogateescape"), "revision": lock.revision}
            )
        else:
            ctx.out.line(ctx.out.text(lock.key))
        ctx.out.flush()
        await lock.lost()
        raise CommandError("the lock's session expired: the lock is lost")
    finally:
        await lock.release()


async def cmd_elect(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "elect")
    out = ctx.out
    client = ctx.client
    name = arg_bytes(args.name)
    if args.listen:
        if args.proposal is not None:
            raise UsageError("elect: a proposal cannot be combined with -l/--listen")
        observer = client.election(name)
        leaders = observer.observe()
        try:
            async for kv in leaders:
                out.kv(kv)
                out.flush()
        finally:
            aclose = getattr(leaders, "aclose", None)  # an async generator: end its watch
            if aclose is not None:
                await aclose()
        raise CommandError("elect: observer lost")
    if args.proposal is None:
        raise UsageError("elect needs a proposal (or -l to observe)")
    async with client.session(ttl=args.ttl) as session:
        election = client.election(name, session=session)
        await election.campaign(arg_bytes(args.proposal))
        try:
            key = election.key
            assert key is not None
            leader = (await client.get(key)).first
            if leader is not None:
                out.kv(leader)
            out.flush()
            await session.lost()
            raise CommandError("elect: session expired, leadership lost")
        finally:
            await election.resign()


LOCK_HELP = """\
Acquire the distributed lock NAME (waiting in line behind earlier holders).

Without a command: print the lock's key and hold the lock until interrupted.
With `-- COMMAND [ARGS...]`: run the command while holding the lock, with
ETCD_LOCK_KEY (the lock's key) and ETCD_LOCK_REV (its create revision, the
fencing token) in its environment; exit with the command's status.

Ctrl-C or SIGTERM release the lock (deleting its key and revoking the session
lease) before exiting with status 130 / 143; a running command gets the signal
too. If this process dies, the lock is freed when the lease expires (--ttl).
Interoperates with `etcdctl lock` and Go's concurrency.Mutex.
"""

ELECT_HELP = """\
Campaign in election NAME with PROPOSAL: once elected, print the leader key
and value and stay leader until interrupted (Ctrl-C or SIGTERM resign: the key
is deleted and the session lease revoked, exit status 130 / 143).

With -l/--listen: print the leader's key and value now and on every change.
Interoperates with `etcdctl elect` and Go's concurrency.Election.
"""


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    p = commands.add(sub, "lock", cmd_lock, "acquire a distributed lock", description=LOCK_HELP)
    p.add_argument("name", help="the lock's name (its keys live under NAME/)")
    p.add_argument(
        "exec_command",
        nargs="*",
        metavar="COMMAND",
        help="command to run while holding the lock (put it after --)",
    )
    p.add_argument(
        "--ttl", type=positive_int, default=10, help="session lease TTL in seconds (default 10)"
    )
    p.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="give up (exit 1) if not acquired within DURATION",
    )
    p.set_defaults(takes_command=True)

    p = commands.add(
        sub, "elect", cmd_elect, "campaign in or observe a leader election", description=ELECT_HELP
    )
    p.add_argument("name", help="the election's name (its keys live under NAME/)")
    p.add_argument("proposal", nargs="?", help="the value to campaign with")
    add_flag(p, "-l", "--listen", help="observe the leader instead of campaigning")
    p.add_argument(
        "--ttl",
        type=positive_int,
        default=DEFAULT_SESSION_TTL,
        help=f"session lease TTL in seconds (default {DEFAULT_SESSION_TTL})",
    )
