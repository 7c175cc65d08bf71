"""The command line's entry point: global options, settings, signals, exit statuses."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__
from ..config import Secret
from ..errors import EtcdError
from . import auth, cluster, concurrency, kv, lease, maintenance, watch
from .common import (
    BOOL_FLAGS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ArgumentParser,
    CommandError,
    Commands,
    UsageError,
    normalize_bool_flags,
    parse_bool,
    parse_duration,
)
from .context import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_ENDPOINT,
    Context,
    Settings,
)
from .output import FORMATS, Output

DESCRIPTION = """\
An etcdctl-like command line for etcd v3, built on the aetcd library.

Global options go before or after the command; each also reads an etcdctl
environment variable: ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT,
ETCDCTL_KEY, ETCDCTL_USER, ETCDCTL_PASSWORD, ETCDCTL_COMMAND_TIMEOUT,
ETCDCTL_DIAL_TIMEOUT, ETCDCTL_WRITE_OUT, ETCDCTL_HEX (a flag wins over its
variable).

Exit status: 0 success, 1 an error from etcd or the command ("Error: ..." on
stderr), 2 bad usage, 128+N when ended by signal N (130 for Ctrl-C); `lock
NAME -- COMMAND` exits with the command's status.
"""


# -- parsing -------------------------------------------------------------------------


def _global_options() -> ArgumentParser:
    parent = ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    sup = argparse.SUPPRESS
    group.add_argument(
        "--endpoints",
        dest="g_endpoints",
        metavar="HOST:PORT,...",
        default=sup,
        help=f"comma separated etcd endpoints (default {DEFAULT_ENDPOINT}); "
        "https://host:port turns TLS on",
    )
    group.add_argument(
        "--cacert", dest="g_cacert", metavar="FILE", default=sup, help="CA bundle to verify servers"
    )
    group.add_argument(
        "--cert", dest="g_cert", metavar="FILE", default=sup, help="client TLS certificate"
    )
    group.add_argument("--key", dest="g_key", metavar="FILE", default=sup, help="client TLS key")
    group.add_argument(
        "--user",
        dest="g_user",
        metavar="NAME[:PASSWORD]",
        default=sup,
        help="user for authentication (the password is prompted for if missing)",
    )
    group.add_argument(
        "--password", dest="g_password", metavar="PASSWORD", default=sup, help="password of --user"
    )
    group.add_argument(
        "--command-timeout",
        dest="g_command_timeout",
        metavar="DURATION",
        type=parse_duration,
        default=sup,
        help="deadline of each request, like 5s or 500ms (default 5s)",
    )
    group.add_argument(
        "--dial-timeout",
        dest="g_dial_timeout",
        metavar="DURATION",
        type=parse_duration,
        default=sup,
        help="time allowed to connect, added to the command timeout (default 2s)",
    )
    group.add_argument(
        "-w",
        "--write-out",
        dest="g_write_out",
        choices=FORMATS,
        default=sup,
        help="output format: simple (default), json, or table where it makes sense",
    )
    BOOL_FLAGS.add("hex")
    group.add_argument(
        "--hex",
        dest="g_hex",
        action="store_true",
        default=sup,
        help="print keys and values as hex escapes",
    )
    return parent


def build_parser() -> ArgumentParser:
    """The full ``aetcd`` argument parser."""
    parent = _global_options()
    parser = ArgumentParser(
        prog="aetcd",
        description=DESCRIPTION,
        parents=[parent],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aetcd {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    sub.required = True
    commands = Commands([parent])
    kv.register(commands, sub)
    watch.register(commands, sub)
    lease.register(commands, sub)
    concurrency.register(commands, sub)
    cluster.register(commands, sub)
    maintenance.register(commands, sub)
    auth.register(commands, sub)
    commands.add(
        sub,
        "demo",
        _demo,
        "run the guided tour of aetcd",
        description="Run aetcd's guided tour (KV, txn, leases, watch, lock, election).\n\n"
        "Uses the first of --endpoints when given (or ETCDCTL_ENDPOINTS), otherwise\n"
        "starts an embedded etcd on a free loopback port for the tour.",
    )
    commands.add(sub, "version", _version, "print the aetcd version")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse *argv*; ``--`` ends the options, and for ``lock``/``watch`` starts a command."""
    parser = build_parser()  # (first: it registers the boolean flags)
    args = normalize_bool_flags(argv)
    if "--" in args:
        cut = args.index("--")
        with contextlib.suppress(UsageError):
            ns = parser.parse_args(args[:cut])
            if getattr(ns, "takes_command", False):
                ns.exec_command = [*getattr(ns, "exec_command", []), *args[cut + 1 :]]
                return ns
    return parser.parse_args(args)


def _env_duration(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        return parse_duration(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"${name}: {exc}") from None


def resolve_settings(ns: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Combine flags, ``ETCDCTL_*`` variables and defaults (prompting for a password)."""

    def pick(attr: str, var: str) -> Any:
        value = getattr(ns, attr, None)
        if value is None:
            value = env.get(var) or None
        return value

    endpoints_text = pick("g_endpoints", "ETCDCTL_ENDPOINTS")
    endpoints = [e.strip() for e in (endpoints_text or DEFAULT_ENDPOINT).split(",") if e.strip()]
    if not endpoints:
        raise UsageError("--endpoints must name at least one endpoint")

    command_timeout = getattr(ns, "g_command_timeout", None)
    if command_timeout is None:
        command_timeout = _env_duration(env, "ETCDCTL_COMMAND_TIMEOUT", DEFAULT_COMMAND_TIMEOUT)
    dial_timeout = getattr(ns, "g_dial_timeout", None)
    if dial_timeout is None:
        dial_timeout = _env_duration(env, "ETCDCTL_DIAL_TIMEOUT", DEFAULT_DIAL_TIMEOUT)
    if command_timeout <= 0:
        raise UsageError("--command-timeout must be more than 0")

    write_out = pick("g_write_out", "ETCDCTL_WRITE_OUT") or "simple"
    if write_out not in FORMATS:
        raise UsageError(
            f"unsupported output format {write_out!r} (choose from simple, json, table)"
        )
    hex_out = getattr(ns, "g_hex", False)
    if not hex_out and env.get("ETCDCTL_HEX"):
        try:
            hex_out = parse_bool(env["ETCDCTL_HEX"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"$ETCDCTL_HEX: {exc}") from None

    # Passwords are wrapped at once, here and in *ns*, so that no frame's locals
    # (shown by error trackers and debuggers) hold them in plain text.
    user = pick("g_user", "ETCDCTL_USER")
    given = pick("g_password", "ETCDCTL_PASSWORD")
    password = None if given is None else Secret(given)
    del given
    if getattr(ns, "g_password", None) is not None:
        ns.g_password = password
    if user is not None:
        user, sep, given = user.partition(":")
        inline = Secret(given)
        del given
        if sep:
            if getattr(ns, "g_user", None) is not None:
                ns.g_user = user
            if getattr(ns, "g_password", None) is not None:
                raise UsageError("give the password in --user or in --password, not both")
            password = inline
        if not user:
            raise UsageError("--user needs a user name")
        if password is None:
            if not sys.stdin.isatty():
                raise UsageError(
                    "no password for --user: give NAME:PASSWORD, --password or $ETCDCTL_PASSWORD"
                )
            password = Secret(getpass.getpass("Password: "))
    elif password is not None and getattr(ns, "g_password", None) is not None:
        raise UsageError("--password needs --user")

    return Settings(
        endpoints=endpoints,
        endpoints_given=endpoints_text is not None,
        cacert=pick("g_cacert", "ETCDCTL_CACERT"),
        cert=pick("g_cert", "ETCDCTL_CERT"),
        key=pick("g_key", "ETCDCTL_KEY"),
        user=user,
        password=password,
        command_timeout=command_timeout,
        dial_timeout=dial_timeout,
        write_out=write_out,
        hex=hex_out,
    )


# -- running -------------------------------------------------------------------------


def _error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)


async def _execute(ns: argparse.Namespace, settings: Settings) -> int:
    out = Output(settings.write_out, settings.hex)
    ctx = Context(settings, out)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    installed: list[int] = []

    def on_signal(signum: int) -> None:
        if ctx.signal is None:
            ctx.signal = signum
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, int(sig))
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            continue
        installed.append(sig)
    try:
        try:
            code: int = await ns.handler(ctx, ns)
        finally:
            await ctx.close()
            with contextlib.suppress(BrokenPipeError):
                out.flush()
        return code
    except asyncio.CancelledError:
        if ctx.signal is None:
            raise
        task.uncancel()
        return 128 + ctx.signal
    except EtcdError as exc:
        _error(exc.message)
        return EXIT_ERROR
    except CommandError as exc:
        _error(str(exc))
        return EXIT_ERROR
    except UsageError as exc:
        _error(exc.message)
        return EXIT_USAGE
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        _error(str(exc))
        return EXIT_ERROR
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _usage_error(exc: UsageError) -> int:
    if exc.parser is not None:
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
    else:
        _error(exc.message)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        ns = parse_args(args)
        settings = resolve_settings(ns, os.environ)
        prepare = getattr(ns, "prepare", None)
        if prepare is not None:  # reads stdin or prompts before the event loop starts
            prepare(ns)
    except UsageError as exc:
        return _usage_error(exc)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        return asyncio.run(_execute(ns, settings))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``aetcd get ... | head``): stop quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


# -- small commands ------------------------------------------------------------------


async def _demo(ctx: Context, args: argparse.Namespace) -> int:
    from . import demo  # only this command needs it (and, through it, aetcd.testing)

    endpoint = ctx.settings.endpoints[0] if ctx.settings.endpoints_given else None
    try:
        return await demo.main(endpoint)
    except (RuntimeError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc


async def _version(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.line(f"aetcd version: {__version__}")
    ctx.out.line("API version: 3.5")
    return EXIT_OK
