"""Normalisation of user input at the edge: keys, values, integers, timeouts.

Everything here raises ``TypeError`` or :class:`aetcd.errors.InvalidArgumentError`
*before* any I/O, so a bad call never reaches the server.
"""

from __future__ import annotations

import math
from typing import Final

from .errors import EmptyKeyError, InvalidArgumentError, _rejected

INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)

#: The range end that means "every key >= key" (etcd's ``WithFromKey``).
FROM_KEY: Final = b"\0"


def to_bytes(value: object, name: str) -> bytes:
    """Return *value* as bytes: ``str`` is encoded UTF-8, bytes-likes are copied.

    Anything else (``int``, ``None``, ``float``...) is a ``TypeError`` naming the
    argument, because guessing an encoding for it would store something the
    caller did not mean.
    """
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")


def to_key(value: object, name: str = "key") -> bytes:
    """Like :func:`to_bytes`, and an empty key is an :class:`EmptyKeyError`."""
    key = to_bytes(value, name)
    if not key:
        raise _rejected(
            EmptyKeyError, "etcdserver: key is not provided", f"{name} must not be empty"
        )
    return key


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with *prefix*.

    Mirrors Go's ``clientv3.GetPrefixRangeEnd``: drop trailing 0xff bytes and
    increment the last remaining byte; if nothing remains (the prefix is empty
    or all 0xff) the answer is ``b"\\0"``, meaning "to the end of the keyspace".
    """
    end = prefix.rstrip(b"\xff")
    if not end:
        return FROM_KEY
    return end[:-1] + bytes((end[-1] + 1,))


def to_int(value: object, name: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """Check that *value* is an ``int`` (not ``bool``) within [minimum, maximum]."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be int, not {type(value).__name__}")
        value = int(value)
    if value < minimum or value > maximum:
        raise InvalidArgumentError(
            f"{name} must be between {minimum} and {maximum}, got {value}", code=None
        )
    return value


def to_timeout(value: object, name: str = "timeout") -> float | None:
    """Check a timeout in seconds: a finite number > 0, or ``math.inf`` for none.

    Returns ``None`` for ``math.inf`` (no deadline at all).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be > 0 seconds, got {value!r}", code=None)
    if math.isinf(value):
        return None
    return float(value)
