"""python-etcd3's helpers that users import."""

from __future__ import annotations

from typing import Any


def increment_last_byte(byte_string: bytes) -> bytes:
    """*byte_string* with its last byte incremented (the end of a prefix range)."""
    s = bytearray(byte_string)
    s[-1] = s[-1] + 1
    return bytes(s)


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end that covers every key starting with *prefix* (etcd's rule)."""
    s = bytearray(prefix)
    for i in reversed(range(len(s))):
        if s[i] < 0xFF:
            s[i] += 1
            return bytes(s[: i + 1])
    return b"\0"


def to_bytes(maybe_bytestring: str | bytes) -> bytes:
    """Encode a ``str`` as UTF-8; ``bytes`` pass through."""
    if isinstance(maybe_bytestring, bytes):
        return maybe_bytestring
    return maybe_bytestring.encode("utf-8")


def lease_to_id(lease: Any) -> int:
    """A lease object's id, or an int-like lease id (0 for none)."""
    if lease is None:
        return 0
    lid = getattr(lease, "id", None)
    if lid is not None:
        return int(lid)
    try:
        return int(lease)
    except TypeError:
        return 0
