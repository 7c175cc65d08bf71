"""The KV facade: get, put, delete, txn and compact over one execution path.

Each method builds an immutable :class:`aetcd.Op` (validating its arguments
before any I/O) and hands it to :meth:`KV.do`, like Go's ``KV.Do``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ._channel import State, Transport
from ._coalesce import Coalescer
from ._keys import to_int
from ._pb import rpc_pb2
from .errors import RequestTooLargeError
from .ops import (
    Compare,
    LeaseLike,
    Op,
    OpKind,
    check_txn_ops,
    delete_request,
    namespaced,
    ns_range,
    put_request,
    range_request,
    txn_has_writes,
)
from .types import (
    CompactResult,
    DeleteResult,
    GetResult,
    KeyValue,
    OpResult,
    PutResult,
    SortOrder,
    SortTarget,
    TxnResult,
)

__all__ = ["KV"]


class KV:
    """Key-value operations of :class:`aetcd.Client` (etcd's KV service)."""

    _t: Transport
    #: Coalescers of concurrent reads / writes (see aetcd._coalesce), or None.
    _read_batcher: Coalescer | None = None
    _write_batcher: Coalescer | None = None

    async def _range(self, req: Any, timeout: float | None) -> Any:
        t = self._t
        return await t.unary(t.kv.Range, req, timeout, write=False)

    async def _put(self, req: Any, timeout: float | None) -> Any:
        t = self._t
        _check_put_size(t, req)
        return await t.unary(t.kv.Put, req, timeout, write=True)

    async def _delete(self, req: Any, timeout: float | None) -> Any:
        t = self._t
        return await t.unary(t.kv.DeleteRange, req, timeout, write=True)

    async def do(self, op: Op, *, timeout: float | None = None) -> OpResult:
        """Run one :class:`Op` and return its typed result.

        Reads are retried on transient failures within the deadline; writes are
        not (see :class:`aetcd.OutcomeUnknownError`).
        """
        t = self._t
        if t.state is not State.OPENED or t.forked:
            await t.open()
        ns = t.config.namespace
        if ns:
            result = await self._do(t, namespaced(op, ns), timeout)
            return _strip(result, len(ns))
        return await self._do(t, op, timeout)

    @staticmethod
    async def _do(t: Transport, op: Op, timeout: float | None) -> OpResult:
        kind = op.kind
        req = op.request
        if kind is OpKind.GET:
            return GetResult.from_pb(await t.unary(t.kv.Range, req, timeout, write=False))
        if kind is OpKind.PUT:
            _check_put_size(t, req)
            return PutResult.from_pb(await t.unary(t.kv.Put, req, timeout, write=True))
        if kind is OpKind.DELETE:
            return DeleteResult.from_pb(await t.unary(t.kv.DeleteRange, req, timeout, write=True))
        check_txn_ops(req, t.config.max_txn_ops)
        size = req.ByteSize()
        if size > t.config.max_request_bytes:
            raise RequestTooLargeError(
                f"txn of {size} bytes exceeds max_request_bytes={t.config.max_request_bytes}"
            )
        resp = await t.unary(t.kv.Txn, req, timeout, write=txn_has_writes(req))
        return TxnResult.from_pb(resp)

    async def get(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        limit: int = 0,
        revision: int = 0,
        sort_order: SortOrder | None = None,
        sort_target: SortTarget | None = None,
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
        timeout: float | None = None,
    ) -> GetResult:
        """Read one key, a prefix (``prefix=True``), a range (``range_end=``) or
        every key from *key* on (``from_key=True``).

        ``revision`` reads the store as of that revision (0: latest; a compacted
        one raises :class:`aetcd.CompactedError`, a future one
        :class:`aetcd.FutureRevisionError`). ``serializable=True`` may answer from
        a member's local, possibly stale, state. ``limit`` caps the number of
        keys (``result.more`` tells whether some were left out), ``keys_only``
        leaves values out, ``count_only`` returns only ``result.count``. The
        ``min_/max_..._revision`` options filter by revision.
        ``prefix=True`` with an empty key reads every key.
        """
        req = range_request(
            key,
            prefix,
            range_end,
            from_key,
            limit,
            revision,
            sort_order,
            sort_target,
            serializable,
            keys_only,
            count_only,
            min_mod_revision,
            max_mod_revision,
            min_create_revision,
            max_create_revision,
        )
        t = self._t
        if t.state is not State.OPENED or t.forked:
            await t.open()
        ns = t.config.namespace
        if ns:
            req.key, req.range_end = ns_range(ns, req.key, req.range_end)
        batcher = self._read_batcher
        if batcher is not None and not req.serializable:
            response = await batcher.call(req, timeout, self._range)
        else:
            response = await t.unary(t.kv.Range, req, timeout, write=False)
        result = GetResult.from_pb(response)
        return _strip(result, len(ns)) if ns else result  # type: ignore[return-value]

    async def put(
        self,
        key: str | bytes,
        value: str | bytes,
        *,
        lease: LeaseLike | None = None,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
        timeout: float | None = None,
    ) -> PutResult:
        """Store *value* under *key*, optionally attached to *lease*.

        ``prev_kv=True`` returns the previous key-value. ``ignore_value=True``
        keeps the current value (pass ``b""``) and ``ignore_lease=True`` keeps the
        current lease; both need the key to exist. A failure in transit raises
        :class:`aetcd.OutcomeUnknownError`: the put may have been applied.
        """
        req = put_request(key, value, lease, prev_kv, ignore_value, ignore_lease)
        t = self._t
        if t.state is not State.OPENED or t.forked:
            await t.open()
        ns = t.config.namespace
        if ns:
            req.key = ns + req.key
        batcher = self._write_batcher
        if batcher is not None:
            response = await batcher.call(req, timeout, self._put)
        else:
            response = await self._put(req, timeout)
        result = PutResult.from_pb(response)
        return _strip(result, len(ns)) if ns else result  # type: ignore[return-value]

    async def delete(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        prev_kv: bool = False,
        timeout: float | None = None,
    ) -> DeleteResult:
        """Delete one key, a prefix, a range or every key from *key* on.

        ``result.deleted`` counts the deleted keys; ``prev_kv=True`` also returns
        them. ``prefix=True`` with an empty key deletes every key.
        """
        req = delete_request(key, prefix, range_end, from_key, prev_kv)
        t = self._t
        if t.state is not State.OPENED or t.forked:
            await t.open()
        ns = t.config.namespace
        if ns:
            req.key, req.range_end = ns_range(ns, req.key, req.range_end)
        batcher = self._write_batcher
        if batcher is not None:
            response = await batcher.call(req, timeout, self._delete)
        else:
            response = await t.unary(t.kv.DeleteRange, req, timeout, write=True)
        result = DeleteResult.from_pb(response)
        return _strip(result, len(ns)) if ns else result  # type: ignore[return-value]

    async def txn(
        self,
        compare: Iterable[Compare] = (),
        success: Iterable[Op] = (),
        failure: Iterable[Op] = (),
        *,
        timeout: float | None = None,
    ) -> TxnResult:
        """Atomically: if every compare holds, run *success*, else *failure*.

        ``result.succeeded`` says which branch ran; ``result.responses`` holds one
        result per op of that branch, in order. All writes of a txn share one
        revision. Ops may be nested txns (``Op.txn``).
        """
        result = await self.do(Op.txn(compare, success, failure), timeout=timeout)
        assert isinstance(result, TxnResult)
        return result

    async def compact(
        self, revision: int, *, physical: bool = False, timeout: float | None = None
    ) -> CompactResult:
        """Discard history before *revision*; reads and watches below it then fail
        with :class:`aetcd.CompactedError`.

        ``physical=True`` waits until the space is actually reclaimed.
        """
        rev = to_int(revision, "revision", minimum=1)
        if type(physical) is not bool:
            raise TypeError(f"physical must be bool, not {type(physical).__name__}")
        t = self._t
        if t.state is not State.OPENED or t.forked:
            await t.open()
        req = rpc_pb2.CompactionRequest(revision=rev, physical=physical)
        resp: Any = await t.unary(t.kv.Compact, req, timeout, write=True)
        return CompactResult.from_pb(resp)


def _check_put_size(t: Transport, req: Any) -> None:
    """Refuse a put the server would refuse for its size (``--max-request-bytes``)."""
    size = len(req.key) + len(req.value)
    if size > t.config.max_request_bytes:
        raise RequestTooLargeError(
            f"put of {size} bytes exceeds max_request_bytes={t.config.max_request_bytes}"
        )


def _strip_kv(kv: KeyValue, n: int) -> KeyValue:
    return dataclasses.replace(kv, key=kv.key[n:])


def _strip(result: OpResult, n: int) -> OpResult:
    """Remove the namespace (its length *n*) from every key of a result."""
    if isinstance(result, GetResult):
        return dataclasses.replace(result, kvs=[_strip_kv(kv, n) for kv in result.kvs])
    if isinstance(result, PutResult):
        if result.prev_kv is None:
            return result
        return dataclasses.replace(result, prev_kv=_strip_kv(result.prev_kv, n))
    if isinstance(result, DeleteResult):
        return dataclasses.replace(result, prev_kvs=[_strip_kv(kv, n) for kv in result.prev_kvs])
    return dataclasses.replace(result, responses=[_strip(r, n) for r in result.responses])
