"""python-etcd3's transaction builders (``client.transactions``), as aetcd values.

The compares are :class:`aetcd.Compare` operands (``== != < >`` return new
values: python-etcd3's mutated themselves), the operations :class:`aetcd.Op`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aetcd
from aetcd.ops import CompareOperand

from .utils import lease_to_id


def _end(range_end: str | bytes | None) -> str | bytes | None:
    return range_end or None


def Value(key: str | bytes, range_end: str | bytes | None = None) -> CompareOperand:
    """Compare a key's value."""
    return aetcd.Compare.value(key, range_end=_end(range_end))


def Version(key: str | bytes, range_end: str | bytes | None = None) -> CompareOperand:
    """Compare a key's version."""
    return aetcd.Compare.version(key, range_end=_end(range_end))


def Create(key: str | bytes, range_end: str | bytes | None = None) -> CompareOperand:
    """Compare a key's create revision."""
    return aetcd.Compare.create_revision(key, range_end=_end(range_end))


def Mod(key: str | bytes, range_end: str | bytes | None = None) -> CompareOperand:
    """Compare a key's mod revision."""
    return aetcd.Compare.mod_revision(key, range_end=_end(range_end))


def Lease(key: str | bytes, range_end: str | bytes | None = None) -> CompareOperand:
    """Compare a key's lease id."""
    return aetcd.Compare.lease(key, range_end=_end(range_end))


def Put(key: str | bytes, value: str | bytes, lease: Any = None, prev_kv: bool = False) -> aetcd.Op:
    """A put inside a transaction."""
    return aetcd.Op.put(key, value, lease=lease_to_id(lease) or None, prev_kv=prev_kv)


def Get(key: str | bytes, range_end: str | bytes | None = None) -> aetcd.Op:
    """A get inside a transaction."""
    return aetcd.Op.get(key, range_end=_end(range_end))


def Delete(
    key: str | bytes, range_end: str | bytes | None = None, prev_kv: bool = False
) -> aetcd.Op:
    """A delete inside a transaction."""
    return aetcd.Op.delete(key, range_end=_end(range_end), prev_kv=prev_kv)


def Txn(
    compare: Iterable[aetcd.Compare],
    success: Iterable[aetcd.Op] | None = None,
    failure: Iterable[aetcd.Op] | None = None,
) -> aetcd.Op:
    """A nested transaction."""
    return aetcd.Op.txn(compare, success or (), failure or ())


class Transactions:
    """``client.transactions``: the builders under python-etcd3's names."""

    value = staticmethod(Value)
    version = staticmethod(Version)
    create = staticmethod(Create)
    mod = staticmethod(Mod)
    lease = staticmethod(Lease)
    put = staticmethod(Put)
    get = staticmethod(Get)
    delete = staticmethod(Delete)
    txn = staticmethod(Txn)
