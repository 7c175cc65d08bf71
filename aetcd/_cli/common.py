"""Shared plumbing of the command line: argument parsing helpers, etcdctl's
duration and size formats, and the output writer (simple, json, table).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, Final, NoReturn

from ..types import (
    DeleteResult,
    GetResult,
    KeyValue,
    PutResult,
    ResponseHeader,
    TxnResult,
)

#: Exit statuses (the command's own status for ``lock NAME -- command``).
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

#: Output formats of ``-w/--write-out``.
FORMATS: Final = ("simple", "json", "table")


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


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end selecting every key that starts with *prefix* (Go ``GetPrefixRangeEnd``)."""
    end = prefix.rstrip(b"\xff")
    if not end:
        return b"\0"
    return end[:-1] + bytes((end[-1] + 1,))


# -- etcdctl's formats ---------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String`` (``2.511919ms``, ``1.5s``, ``2m3s``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_fraction(rest, 1_000_000_000)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def humanize_bytes(size: int) -> str:
    """Format like go-humanize's ``Bytes`` (SI units: ``61 kB``, ``2.1 MB``)."""
    if size < 10:
        return f"{size} B"
    exp = min(math.floor(math.log(size, 1000)), 6)
    value = math.floor(size / 1000**exp * 10 + 0.5) / 10
    suffix = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[exp]
    return f"{value:.1f} {suffix}" if value < 10 else f"{value:.0f} {suffix}"


# -- JSON, in etcdctl's shapes (Go encoding/json of the protobuf structs) ------------


def b64(data: bytes) -> str:
    """Bytes as JSON shows them: base64."""
    return base64.b64encode(data).decode("ascii")


def _drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v not in (0, "", False, None, [], {})}


def header_json(header: ResponseHeader) -> dict[str, Any]:
    """A response header (zero fields omitted, as Go's ``omitempty`` does)."""
    return _drop_empty(
        {
            "cluster_id": header.cluster_id,
            "member_id": header.member_id,
            "revision": header.revision,
            "raft_term": header.raft_term,
        }
    )


def kv_json(kv: KeyValue) -> dict[str, Any]:
    """A key-value with base64 key and value."""
    return _drop_empty(
        {
            "key": b64(kv.key),
            "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision,
            "version": kv.version,
            "value": b64(kv.value),
            "lease": kv.lease,
        }
    )


def result_json(result: GetResult | PutResult | DeleteResult | TxnResult) -> dict[str, Any]:
    """The JSON etcdctl prints for a get, put, del or txn."""
    if isinstance(result, GetResult):
        return _drop_empty(
            {
                "header": header_json(result.header),
                "kvs": [kv_json(kv) for kv in result.kvs],
                "more": result.more,
                "count": result.count,
            }
        )
    if isinstance(result, PutResult):
        prev = kv_json(result.prev_kv) if result.prev_kv is not None else None
        return _drop_empty({"header": header_json(result.header), "prev_kv": prev})
    if isinstance(result, DeleteResult):
        return _drop_empty(
            {
                "header": header_json(result.header),
                "deleted": result.deleted,
                "prev_kvs": [kv_json(kv) for kv in result.prev_kvs],
            }
        )
    responses = []
    for sub in result.responses:
        name = {
            GetResult: "response_range",
            PutResult: "response_put",
            DeleteResult: "response_delete_range",
            TxnResult: "response_txn",
        }[type(sub)]
        responses.append({"Response": {name: result_json(sub)}})
    return _drop_empty(
        {
            "header": header_json(result.header),
            "succeeded": result.succeeded,
            "responses": responses,
        }
    )


# -- output --------------------------------------------------------------------------


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII table like etcdctl's (headers centred, numbers right-aligned)."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def right(cell: str) -> bool:
        return bool(re.fullmatch(r"-?[\d.]+( [kMGTPE]?B)?|true|false", cell))

    def center(text: str, width: int) -> str:
        left = (width - len(text)) // 2
        return " " * left + text.ljust(width - left)

    lines = [
        rule,
        "| " + " | ".join(center(h, w) for h, w in zip(header, widths, strict=True)) + " |",
        rule,
    ]
    for row in rows:
        cells = [
            cell.rjust(w) if right(cell) else cell.ljust(w)
            for cell, w in zip(row, widths, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(rule)
    return "\n".join(lines)


class Output:
    """Writes a command's results to stdout in the chosen format.

    Keys and values are written as the raw bytes etcd holds (or, with ``--hex``,
    as ``\\x..`` escapes), one per line, like etcdctl's simple format.
    """

    def __init__(self, write_out: str = "simple", hex: bool = False) -> None:
        self.format = write_out
        self.hex = hex

    @property
    def json(self) -> bool:
        """Whether ``-w json`` was asked for."""
        return self.format == "json"

    @property
    def table(self) -> bool:
        """Whether ``-w table`` was asked for."""
        return self.format == "table"

    @staticmethod
    def _stream() -> IO[bytes]:
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is None:  # pragma: no cover - a text-only replacement of sys.stdout
            raise CommandError("stdout does not accept bytes")
        stream.flush()
        return buffer  # type: ignore[no-any-return]

    def write(self, data: bytes) -> None:
        """Write raw bytes."""
        self._stream().write(data)

    def line(self, text: str | bytes = b"") -> None:
        """Write one line (``str`` is encoded UTF-8)."""
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        self._stream().write(data + b"\n")

    def flush(self) -> None:
        """Push everything written so far out (watch output must not linger)."""
        self._stream().flush()

    def text(self, data: bytes) -> bytes:
        """Key or value bytes as printed: raw, or ``\\x66\\x6f\\x6f`` with ``--hex``."""
        if self.hex:
            return "".join(f"\\x{b:02x}" for b in data).encode("ascii")
        return data

    def kv(self, kv: KeyValue, *, value_only: bool = False, keys_only: bool = False) -> None:
        """A key-value the etcdctl way: the key on one line, the value on the next."""
        if not value_only:
            self.line(self.text(kv.key))
        if not keys_only:
            self.line(self.text(kv.value))

    def dump(self, obj: Any) -> None:
        """One JSON document on one line, compact like Go's encoder."""
        self.line(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    def render_table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """An ASCII table."""
        self.line(render_table(header, rows))

    def rows(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Rows as a table (``-w table``) or comma separated lines (simple)."""
        if self.table:
            self.render_table(header, rows)
        else:
            for row in rows:
                self.line(", ".join(row))

    def result(
        self,
        result: GetResult | PutResult | DeleteResult | TxnResult,
        *,
        value_only: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> None:
        """A get, put, del or txn result in the simple or json format."""
        if self.json:
            self.dump(result_json(result))
            return
        if isinstance(result, GetResult):
            if count_only:
                self.line(str(result.count))
                return
            for kv in result.kvs:
                self.kv(kv, value_only=value_only, keys_only=keys_only)
        elif isinstance(result, PutResult):
            self.line("OK")
            if result.prev_kv is not None:
                self.kv(result.prev_kv, value_only=value_only)
        elif isinstance(result, DeleteResult):
            self.line(str(result.deleted))
            for kv in result.prev_kvs:
                self.kv(kv, value_only=value_only)
        else:
            self.line("SUCCESS" if result.succeeded else "FAILURE")
            for sub in result.responses:
                self.line()
                self.result(sub, value_only=value_only)


def no_table(out: Output, command: str) -> None:
    """Refuse ``-w table`` for commands that have no tabular form."""
    if out.table:
        raise UsageError(f"table output is not supported by {command!r} (use simple or json)")


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
