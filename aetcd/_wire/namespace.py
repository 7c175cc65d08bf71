"""A client namespace: keys of requests go under a prefix, keys of results come back without.

Like Go's ``namespace`` package, in one place: the services hold a
:class:`Namespace` when the client has one (``Client(namespace=...)``), else
``None``, so a client without one pays a single ``is None`` test per call.
A range end of ``b"\\0"`` ("to the end of the keyspace") becomes the end of
the namespace: a namespaced client never sees keys outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._keys import FROM_KEY, prefix_range_end
from ..ops import _ONEOF, Op, _new_op
from ..types import DeleteResult, Event, GetResult, KeyValue, OpResult, PutResult, TxnResult
from .view import evolve

if TYPE_CHECKING:
    from ..config import ClientConfig


class Namespace:
    """The namespace *prefix*: adds it to requests and strips it from results."""

    __slots__ = ("_end", "_n", "prefix")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self._n = len(prefix)
        self._end = prefix_range_end(prefix)

    @staticmethod
    def of(config: ClientConfig) -> Namespace | None:
        """The namespace of a client's configuration, or ``None`` when it has none."""
        return Namespace(config.namespace) if config.namespace else None

    # -- requests --------------------------------------------------------------------

    def key_range(self, key: bytes, range_end: bytes) -> tuple[bytes, bytes]:
        """A (key, range_end) pair under the prefix."""
        ns = self.prefix
        if range_end == FROM_KEY:
            end = self._end
        elif range_end:
            end = ns + range_end
        else:
            end = b""
        if key == FROM_KEY and range_end == FROM_KEY:
            return ns, end
        return ns + key, end

    def op(self, op: Op) -> Op:
        """A copy of *op* with every key (compares and nested txns too) under the prefix."""
        oneof = _ONEOF[op.kind]
        fields = self.fields(oneof, op._fields)
        return _new_op(op.kind, op.key, fields, {oneof: fields}, op._writes, op._levels)

    def fields(self, oneof: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Request fields of the RequestOp field *oneof* (see :mod:`aetcd.ops`) with every
        key under the prefix; a new dict (ops are immutable and may be shared)."""
        if oneof == "request_put":
            out = dict(fields)
            out["key"] = self.prefix + fields["key"]
            return out
        if oneof != "request_txn":
            return self._range_fields(fields)
        out = dict(fields)
        if "compare" in fields:
            out["compare"] = [self._range_fields(c) for c in fields["compare"]]
        for branch in ("success", "failure"):
            if branch in fields:
                out[branch] = [
                    {name: self.fields(name, sub) for name, sub in item.items()}
                    for item in fields[branch]
                ]
        return out

    def _range_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        out = dict(fields)
        key, end = self.key_range(fields["key"], fields.get("range_end", b""))
        out["key"] = key
        if end:
            out["range_end"] = end
        return out

    # -- results ---------------------------------------------------------------------

    def _kvs(self, kvs: list[KeyValue]) -> list[KeyValue]:
        n = self._n
        return [kv._with_key(kv.key[n:]) for kv in kvs]

    def get(self, result: GetResult) -> GetResult:
        return evolve(result, kvs=self._kvs(result.kvs)) if result.kvs else result

    def put(self, result: PutResult) -> PutResult:
        prev = result.prev_kv
        if prev is None:
            return result
        return evolve(result, prev_kv=prev._with_key(prev.key[self._n :]))

    def delete(self, result: DeleteResult) -> DeleteResult:
        return evolve(result, prev_kvs=self._kvs(result.prev_kvs)) if result.prev_kvs else result

    def txn(self, result: TxnResult) -> TxnResult:
        return evolve(result, _r=[self.result(r) for r in result.responses])

    def result(self, result: OpResult) -> OpResult:
        """*result* with the prefix removed from every key."""
        if isinstance(result, GetResult):
            return self.get(result)
        if isinstance(result, PutResult):
            return self.put(result)
        if isinstance(result, DeleteResult):
            return self.delete(result)
        return self.txn(result)

    def event(self, event: Event) -> Event:
        """*event* with the prefix removed from its keys (a copy holding its own fields)."""
        n = self._n
        kv = event.kv
        prev = event.prev_kv
        return Event(
            event.type,
            kv._with_key(kv.key[n:]),
            None if prev is None else prev._with_key(prev.key[n:]),
        )

    def keys(self, keys: Iterable[bytes]) -> list[bytes]:
        """The keys under the prefix, relative to it (others are left out)."""
        ns, n = self.prefix, self._n
        return [k[n:] for k in keys if k.startswith(ns)]
