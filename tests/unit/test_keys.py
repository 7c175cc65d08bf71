"""Key normalisation and prefix range ends (Go getPrefix), property-tested."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aetcd._keys import FROM_KEY, prefix_range_end, to_bytes


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if end == FROM_KEY:
        return key >= start
    return start <= key < end


@given(st.binary(max_size=8), st.binary(max_size=12))
def test_prefix_range_selects_exactly_the_prefixed_keys(prefix: bytes, key: bytes) -> None:
    end = prefix_range_end(prefix)
    start = prefix or FROM_KEY
    assert in_range(key, start, end) == key.startswith(prefix) or (
        # b"" prefix selects everything from b"\0" on: only b"" itself is outside
        not prefix and key == b""
    )


@given(st.binary(min_size=1, max_size=8), st.integers(min_value=0, max_value=4))
def test_trailing_ff_bytes(prefix: bytes, ffs: int) -> None:
    p = prefix + b"\xff" * ffs
    end = prefix_range_end(p)
    assert all(p + suffix < end or end == FROM_KEY for suffix in (b"", b"\xff" * 9, b"\xff\x00"))


def test_known_values() -> None:
    assert prefix_range_end(b"a") == b"b"
    assert prefix_range_end(b"a/") == b"a0"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"a\xfe\xff") == b"a\xff"
    assert prefix_range_end(b"\xff\xff") == FROM_KEY
    assert prefix_range_end(b"") == FROM_KEY


def test_to_bytes() -> None:
    assert to_bytes("é", "k") == "é".encode()
    assert to_bytes(bytearray(b"x"), "k") == b"x"
    assert to_bytes(memoryview(b"y"), "k") == b"y"
