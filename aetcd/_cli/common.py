"""The command line's parsing plumbing: exit statuses, usage errors, the argparse
subclass, etcdctl's argument syntaxes (booleans, durations, ids) and the command registry.

The output side (formats, the writer, JSON shaping) is :mod:`aetcd._cli.output`.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, NoReturn

#: Exit statuses (the command's own status for ``lock NAME -- command``).
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class UsageError(Exception):
    """The command line is wrong: print the message (and usage) and exit 2."""

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parser = parser


class CommandError(Exception):
    """A failure found by the command line itself: ``Error: message``, exit 1."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser that raises :class:`UsageError` instead of exiting.

    Subcommands leave the global options (dest ``g_*``) out of their usage line
    (their help still lists them).
    """

    hide_globals = False

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)

    def _usage_actions(self) -> list[argparse.Action]:
        if not self.hide_globals:
            return self._actions
        return [a for a in self._actions if not a.dest.startswith("g_")]

    def format_usage(self) -> str:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._usage_actions(), self._mutually_exclusive_groups)
        return formatter.format_help()

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._usage_actions(), self._mutually_exclusive_groups)
        formatter.add_text(self.description)
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        formatter.add_text(self.epilog)
        return formatter.format_help()


# -- flags ---------------------------------------------------------------------------

#: Long names of boolean flags: ``--name=true`` / ``--name=false`` work as in etcdctl.
BOOL_FLAGS: set[str] = set()


def add_flag(parser: argparse._ActionsContainer, *names: str, help: str) -> None:
    """Add a boolean ``store_true`` flag that also accepts etcdctl's ``--flag=true|false``."""
    for name in names:
        if name.startswith("--"):
            BOOL_FLAGS.add(name[2:])
    parser.add_argument(*names, action="store_true", help=help)


_BOOL_ARG = re.compile(r"--([a-z][a-z-]*)=(true|false|1|0)", re.IGNORECASE)


def normalize_bool_flags(argv: Sequence[str]) -> list[str]:
    """Rewrite ``--flag=true`` as ``--flag`` and drop ``--flag=false`` (up to ``--``)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            out.extend(argv[i:])
            break
        m = _BOOL_ARG.fullmatch(arg)
        if m and m.group(1) in BOOL_FLAGS:
            if m.group(2).lower() in ("true", "1"):
                out.append(f"--{m.group(1)}")
            continue
        out.append(arg)
    return out


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no), as etcdctl's boolean flags take."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "t"):
        return True
    if value in ("false", "0", "no", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """A Go duration (``5s``, ``500ms``, ``1m30s``) or a plain number of seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pos = 0
        seconds = 0.0
        for m in _DURATION_PART.finditer(value):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(value) or not value:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r} (use e.g. 5s, 500ms, 1m30s)"
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    return seconds


def positive_int(text: str) -> int:
    """An int >= 1."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def hex_id(text: str) -> int:
    """A lease or member id in hexadecimal, as etcdctl prints and takes them."""
    value = text.strip().lower().removeprefix("0x")
    try:
        number = int(value, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad id {text!r}: expected hexadecimal") from None
    if not 0 <= number < 2**64:
        raise argparse.ArgumentTypeError(f"bad id {text!r}: out of range")
    return number


def arg_bytes(text: str) -> bytes:
    """A command-line argument as bytes (undecodable bytes survive, as on the shell)."""
    return text.encode("utf-8", "surrogateescape")


Handler = Callable[..., Any]


class Commands:
    """Adds subcommands that all accept the global options (before or after their name)."""

    def __init__(self, parents: Sequence[argparse.ArgumentParser]) -> None:
        self.parents = list(parents)

    def group(
        self, sub: argparse._SubParsersAction[Any], name: str, help: str, description: str = ""
    ) -> argparse._SubParsersAction[Any]:
        """A command with subcommands of its own (``lease grant``, ``member list``...)."""
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=description or help,
            parents=self.parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if isinstance(parser, ArgumentParser):
            parser.hide_globals = True
        return parser.add_subparsers(
            title="commands", dest=f"{name}_command", metavar="COMMAND", required=True
        )

    def add(
        self,
        sub: argparse._SubParsersAction[Any],
        name: str,
        handler: Handler,
        help: str,
        *,
        description: str = "",
        epilog: str | None = None,
        aliases: Sequence[str] = (),
    ) -> argparse.ArgumentParser:
        """A command that runs *handler* ``(ctx, args) -> exit status``."""
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=description or help,
            epilog=epilog,
            aliases=list(aliases),
            parents=self.parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if isinstance(parser, ArgumentParser):
            parser.hide_globals = True
        parser.set_defaults(handler=handler)
        return parser
