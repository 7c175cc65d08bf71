"""The command line's output: etcdctl's duration and size formats, JSON shaping of
results, and the writer for ``-w simple|json|table``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from collections.abc import Sequence
from typing import IO, Any, Final

from ..types import (
    DeleteResult,
    GetResult,
    KeyValue,
    PutResult,
    ResponseHeader,
    TxnResult,
)
from .common import CommandError, UsageError

#: Output formats of ``-w/--write-out``.
FORMATS: Final = ("simple", "json", "table")


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
