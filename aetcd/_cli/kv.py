"""``get``, ``put``, ``del``, ``txn`` and ``compaction``."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from ..ops import Compare, Op
from ..types import SortOrder, SortTarget
from .common import (
    EXIT_OK,
    ArgumentParser,
    Commands,
    UsageError,
    add_flag,
    arg_bytes,
    hex_id,
    non_negative_int,
    positive_int,
)
from .output import no_table

if TYPE_CHECKING:
    from .context import Context

_SORT_TARGETS: Final = {
    "CREATE": SortTarget.CREATE,
    "KEY": SortTarget.KEY,
    "MODIFY": SortTarget.MOD,
    "VALUE": SortTarget.VALUE,
    "VERSION": SortTarget.VERSION,
}
_SORT_ORDERS: Final = {"ASCEND": SortOrder.ASCEND, "DESCEND": SortOrder.DESCEND}


# -- options shared by the commands and the ops of a txn -----------------------------


def _get_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    add_flag(p, "--prefix", help="get every key starting with KEY")
    add_flag(p, "--from-key", help="get every key >= KEY (byte order)")
    add_flag(p, "--keys-only", help="get only the keys")
    add_flag(p, "--count-only", help="get only the number of keys")
    p.add_argument("--limit", type=non_negative_int, default=0, help="maximum number of keys")
    p.add_argument(
        "--rev", type=non_negative_int, default=0, help="read the store as of this revision"
    )
    p.add_argument(
        "--sort-by",
        type=str.upper,
        choices=list(_SORT_TARGETS),
        help="sort target: CREATE, KEY, MODIFY, VALUE or VERSION",
    )
    p.add_argument(
        "--order", type=str.upper, choices=list(_SORT_ORDERS), help="ASCEND (default) or DESCEND"
    )
    p.add_argument(
        "--consistency",
        choices=("l", "s"),
        default="l",
        help="l: linearizable (default), s: serializable (may be stale)",
    )


def _put_options(p: argparse.ArgumentParser, *, stdin_value: bool) -> None:
    p.add_argument("key", help="the key")
    p.add_argument(
        "value",
        nargs="?" if stdin_value else None,
        help="the value (read from stdin when left out)" if stdin_value else "the value",
    )
    p.add_argument(
        "--lease", type=hex_id, default=0, metavar="ID", help="lease id (hex) to attach the key to"
    )
    add_flag(p, "--prev-kv", help="return the previous key-value")
    add_flag(p, "--ignore-value", help="keep the current value")
    add_flag(p, "--ignore-lease", help="keep the current lease")


def _del_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key, or the start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    add_flag(p, "--prefix", help="delete every key starting with KEY")
    add_flag(p, "--from-key", help="delete every key >= KEY (byte order)")
    add_flag(p, "--prev-kv", help="return the deleted key-values")


def _range(args: argparse.Namespace, command: str) -> dict[str, Any]:
    if args.prefix and args.from_key:
        raise UsageError(f"{command}: --prefix and --from-key cannot be used together")
    if args.range_end is not None and (args.prefix or args.from_key):
        raise UsageError(f"{command}: a range end cannot be combined with --prefix or --from-key")
    return {
        "prefix": args.prefix,
        "from_key": args.from_key,
        "range_end": None if args.range_end is None else arg_bytes(args.range_end),
    }


def get_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of ``client.get`` / ``Op.get`` from ``get``'s options."""
    kw = _range(args, "get")
    target = order = None
    if args.sort_by is not None or args.order is not None:
        target = _SORT_TARGETS[args.sort_by or "KEY"]
        order = _SORT_ORDERS[args.order or "ASCEND"]
    kw.update(
        limit=args.limit,
        revision=args.rev,
        sort_target=target,
        sort_order=order,
        serializable=args.consistency == "s",
        keys_only=args.keys_only,
        count_only=args.count_only,
    )
    return kw


def put_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of ``client.put`` / ``Op.put`` from ``put``'s options."""
    return {
        "lease": args.lease or None,
        "prev_kv": args.prev_kv,
        "ignore_value": args.ignore_value,
        "ignore_lease": args.ignore_lease,
    }


def del_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of ``client.delete`` / ``Op.delete`` from ``del``'s options."""
    kw = _range(args, "del")
    kw["prev_kv"] = args.prev_kv
    return kw


# -- commands ------------------------------------------------------------------------


async def cmd_get(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "get")
    result = await ctx.client.get(arg_bytes(args.key), **get_kwargs(args))
    ctx.out.result(
        result,
        value_only=args.print_value_only,
        keys_only=args.keys_only,
        count_only=args.count_only,
    )
    return EXIT_OK


def _prepare_put(args: argparse.Namespace) -> None:
    if args.value is None:
        if args.ignore_value:
            args.value = ""
        elif sys.stdin.isatty():
            raise UsageError("put needs a value (as an argument or on stdin)")
        else:
            data = sys.stdin.buffer.read()
            args.value_bytes = data
            return
    args.value_bytes = arg_bytes(args.value)


async def cmd_put(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "put")
    result = await ctx.client.put(arg_bytes(args.key), args.value_bytes, **put_kwargs(args))
    ctx.out.result(result)
    return EXIT_OK


async def cmd_del(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "del")
    result = await ctx.client.delete(arg_bytes(args.key), **del_kwargs(args))
    ctx.out.result(result)
    return EXIT_OK


async def cmd_compaction(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "compaction")
    await ctx.client.compact(args.revision, physical=args.physical)
    if ctx.out.json:
        ctx.out.dump({"revision": args.revision})
    else:
        ctx.out.line(f"compacted revision {args.revision}")
    return EXIT_OK


# -- txn -----------------------------------------------------------------------------

_TOKEN = re.compile(r""""(?:[^"\\]|\\.)*"|'[^']*'|\S+""")
_SIMPLE_ESCAPES: Final = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
}


def go_unquote(text: str) -> bytes:
    """Decode a Go double-quoted string literal (``%q``) to bytes."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"not a quoted string: {text}")
    body = text[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError(f"bad escape at the end of {text}")
        esc = body[i + 1]
        i += 2
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == "x":
            out.append(int(body[i : i + 2], 16))
            i += 2
        elif esc in "01234567":
            out.append(int(body[i - 1 : i + 2], 8))
            i += 2
        elif esc in "uU":
            n = 4 if esc == "u" else 8
            out += chr(int(body[i : i + n], 16)).encode()
            i += n
        else:
            raise ValueError(f"unknown escape \\{esc} in {text}")
    return bytes(out)


def argify(line: str) -> list[str]:
    """Split a txn line into arguments: ``"go quoted"``, ``'single quoted'`` or bare words."""
    args: list[str] = []
    for token in _TOKEN.findall(line):
        if token.startswith('"') and len(token) > 1:
            try:
                args.append(go_unquote(token).decode("utf-8", "surrogateescape"))
            except ValueError as exc:
                raise UsageError(f"invalid txn argument {token}: {exc}") from None
        elif token.startswith("'") and len(token) > 1 and token.endswith("'"):
            args.append(token[1:-1])
        else:
            args.append(token)
    return args


_COMPARE = re.compile(
    r"""(?P<target>[a-z]+)\(\s*(?P<key>"(?:[^"\\]|\\.)*"|`[^`]*`)\s*\)\s*"""
    r"""(?P<op>\S+)\s*(?P<value>"(?:[^"\\]|\\.)*"|`[^`]*`)"""
)


def _quoted(text: str) -> bytes:
    if text.startswith("`"):
        return text[1:-1].encode()
    return go_unquote(text)


def parse_compare(line: str) -> Compare:
    """One compare line: ``value("k") = "v"``, ``mod("k") > "5"``, ``lease("k") = "1a"``.

    Targets are ``ver``/``version``, ``c``/``create``, ``m``/``mod``, ``val``/``value``
    and ``lease`` (hex); operators ``=``, ``!=``, ``<``, ``>``.
    """
    m = _COMPARE.fullmatch(line)
    if m is None:
        raise UsageError(f"malformed comparison: {line}")
    target, op = m.group("target"), m.group("op")
    try:
        key = _quoted(m.group("key"))
        raw = _quoted(m.group("value"))
    except ValueError as exc:
        raise UsageError(f"malformed comparison: {line} ({exc})") from None
    operand: Any
    value: bytes | int
    try:
        if target in ("ver", "version"):
            operand, value = Compare.version(key), int(raw)
        elif target in ("c", "create"):
            operand, value = Compare.create_revision(key), int(raw)
        elif target in ("m", "mod"):
            operand, value = Compare.mod_revision(key), int(raw)
        elif target in ("val", "value"):
            operand, value = Compare.value(key), raw
        elif target == "lease":
            operand, value = Compare.lease(key), int(raw, 16)
        else:
            raise UsageError(f"malformed comparison: {line} (unknown target {target})")
    except ValueError:
        raise UsageError(f"invalid txn compare request: {line} (not a number)") from None
    if op == "=":
        result: Compare = operand == value
    elif op == "!=":
        result = operand != value
    elif op == "<":
        result = operand < value
    elif op == ">":
        result = operand > value
    else:
        raise UsageError(f"malformed comparison: {line} (unknown operator {op})")
    return result


def _op_parsers() -> dict[str, ArgumentParser]:
    parsers: dict[str, ArgumentParser] = {}
    for name, add in (
        ("get", _get_options),
        ("put", lambda p: _put_options(p, stdin_value=False)),
        ("del", _del_options),
    ):
        parser = ArgumentParser(prog=f"txn {name}", add_help=False)
        add(parser)
        parsers[name] = parser
    parsers["delete"] = parsers["del"]
    return parsers


def parse_op(line: str, parsers: dict[str, ArgumentParser] | None = None) -> Op:
    """One request line of a txn: ``put k v``, ``get k --prefix``, ``del k``."""
    words = argify(line)
    parsers = parsers or _op_parsers()
    if len(words) < 2 or words[0] not in parsers:
        raise UsageError(f"invalid txn request: {line} (expected get, put or del and a key)")
    try:
        args = parsers[words[0]].parse_args(words[1:])
    except UsageError as exc:
        raise UsageError(f"invalid txn request: {line} ({exc.message})") from None
    key = arg_bytes(args.key)
    if words[0] == "get":
        return Op.get(key, **get_kwargs(args))
    if words[0] == "put":
        return Op.put(key, arg_bytes(args.value), **put_kwargs(args))
    return Op.delete(key, **del_kwargs(args))


def _sections(lines: Iterator[str]) -> Iterator[list[str]]:
    """Blank-line separated sections; ``#`` lines are comments; EOF ends a section."""
    section: list[str] = []
    for raw in lines:
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            yield section
            section = []
            continue
        section.append(line)
    yield section


def parse_txn(
    lines: Iterator[str], prompt: bool = False
) -> tuple[list[Compare], list[Op], list[Op]]:
    """Read a txn in etcdctl's format: compares, blank line, success ops, blank
    line, failure ops, blank line."""
    parsers = _op_parsers()
    titles = ("compares:", "success requests (get, put, del):", "failure requests (get, put, del):")
    parts: list[list[str]] = []
    sections = _sections(lines)
    for title in titles:
        if prompt:
            print(title, flush=True)
        parts.append(next(sections, []))
    compares = [parse_compare(line) for line in parts[0]]
    success = [parse_op(line, parsers) for line in parts[1]]
    failure = [parse_op(line, parsers) for line in parts[2]]
    return compares, success, failure


def _read_lines(path: str | None) -> Iterator[str]:
    if path is None or path == "-":
        while True:
            line = sys.stdin.readline()
            if not line:
                return
            yield line
    else:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                yield from f
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _prepare_txn(args: argparse.Namespace) -> None:
    prompt = args.interactive and args.file is None
    args.txn = parse_txn(_read_lines(args.file), prompt=prompt)


async def cmd_txn(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "txn")
    compares, success, failure = args.txn
    result = await ctx.client.txn(compares, success, failure)
    ctx.out.result(result)
    return EXIT_OK


TXN_HELP = """\
Read a transaction from stdin (or --file) and apply it atomically:

  compares, one per line            value("key") = "v"   mod("key") > "5"
                                    version("k") != "0"  create("k") < "9"
                                    lease("k") = "694d77aa9e38260f"
  <blank line>
  requests run when all hold        put key value    get key --prefix
  <blank line>                      del key
  requests run otherwise
  <blank line>

Operators: = != < >. Keys and values may be "double quoted" (Go escapes) or
'single quoted'. Lines starting with # are comments. Prints SUCCESS or FAILURE,
then each request's result after a blank line.

Example:
  printf 'mod("k") > "0"\\n\\nput k v2\\n\\nput k v1\\n\\n' | aetcd txn
"""


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    p = commands.add(
        sub,
        "get",
        cmd_get,
        "get a key or a range of keys",
        description="Get a key, the keys with a prefix, a range [KEY, RANGE_END), or every "
        "key from KEY on.\n\nSimple output: each key on a line, its value on the next.",
    )
    _get_options(p)
    add_flag(p, "--print-value-only", help="print only the values (simple output)")

    p = commands.add(
        sub,
        "put",
        cmd_put,
        "put a key",
        description="Store VALUE under KEY. Without VALUE, the value is read from stdin.\n"
        "Use `aetcd put -- KEY -VALUE` for values starting with '-'.",
    )
    _put_options(p, stdin_value=True)
    p.set_defaults(prepare=_prepare_put)

    p = commands.add(
        sub,
        "del",
        cmd_del,
        "delete a key or a range of keys",
        aliases=["delete"],
        description="Delete a key, the keys with a prefix, a range or every key from KEY on;\n"
        "print how many were deleted.",
    )
    _del_options(p)

    p = commands.add(sub, "txn", cmd_txn, "run a transaction", description=TXN_HELP)
    p.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="prompt for each section (reading stdin)",
    )
    p.add_argument("-f", "--file", metavar="FILE", help="read the transaction from FILE")
    p.set_defaults(prepare=_prepare_txn)

    p = commands.add(
        sub,
        "compaction",
        cmd_compaction,
        "compact the event history",
        description="Discard the history before REVISION (reads and watches below it fail).",
    )
    p.add_argument("revision", type=positive_int, help="the revision to compact to")
    add_flag(p, "--physical", help="wait until the space is reclaimed")
