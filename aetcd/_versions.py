"""The protobuf and grpcio releases aetcd supports, checked once at import.

The generated stubs carry no version gates of their own (``scripts/genproto``
removes them): this module is the one place that says which runtimes aetcd
was tested with, and refuses others with one clear error instead of a
failure deep inside generated code. The range is the one ``pyproject.toml``
declares and the compatibility tier (``scripts/compat``) tests at its floor
and its ceiling.
"""

from __future__ import annotations

import re

import grpc
from google import protobuf

#: Supported releases, as (inclusive floor, exclusive ceiling).
PROTOBUF_RANGE = ((5, 26, 1), (8,))
GRPCIO_RANGE = ((1, 66, 2), (2,))


def _parse(version: str) -> tuple[int, ...]:
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def _show(bound: tuple[int, ...]) -> str:
    return ".".join(map(str, bound))


def check(name: str, version: str, bounds: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    """Raise ImportError unless *version* of *name* lies in *bounds*."""
    low, high = bounds
    if not low <= _parse(version) < high:
        raise ImportError(
            f"aetcd supports {name} >= {_show(low)}, < {_show(high)}; "
            f"this environment has {name} {version}. "
            f"Install a supported release, e.g. pip install '{name}>={_show(low)},<{_show(high)}'"
        )


check("protobuf", protobuf.__version__, PROTOBUF_RANGE)
check("grpcio", grpc.__version__, GRPCIO_RANGE)
