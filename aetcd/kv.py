"""The KV facade: get, put, delete, txn and compact over one execution path.

Each method builds an immutable :class:`aetcd.Op` (validating its arguments
before any I/O) and hands it to :meth:`KV.do`, like Go's ``KV.Do``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from ._channel import Transport
from ._coalesce import Coalescer
from ._keys import to_int
from ._wire.decode import compact_result, delete_view, get_view, put_view, txn_view
from ._wire.messages import CompactionRequest
from ._wire.messages import DeleteRangeRequest as _DeleteRangeRequest
from ._wire.messages import PutRequest as _PutRequest
from ._wire.messages import RangeRequest as _RangeRequest
from ._wire.namespace import Namespace
from ._wire.requests import txn_request
from .config import ClientConfig
from .errors import RequestTooLargeError, _rejected
from .ops import (
    Compare,
    LeaseLike,
    Op,
    OpKind,
    _delete_fields,
    _put_fields,
    _range_fields,
    _txn_fields,
)
from .types import (
    CompactResult,
    DeleteResult,
    GetResult,
    OpResult,
    PutResult,
    SortOrder,
    SortTarget,
    TxnResult,
)

__all__ = ["KV"]

# Enum members as module constants (an Enum class attribute read costs ~70 ns
# on Python 3.11; these are read on every call).
_GET = OpKind.GET
_PUT = OpKind.PUT
_DELETE = OpKind.DELETE


class KV:
    """Key-value operations of :class:`aetcd.Client` (etcd's KV service).

    :meth:`Transport.unary` opens the transport on first use, so no method
    here checks it. :class:`aetcd.Client` documents these methods and calls
    the hot ones with positional arguments (cheaper than keywords).
    """

    def __init__(
        self,
        transport: Transport,
        read_batcher: Coalescer | None = None,
        write_batcher: Coalescer | None = None,
    ) -> None:
        self._t = transport
        #: The client's namespace, or None (one ``is None`` test per call without one).
        self._ns = Namespace.of(transport.config)
        #: Coalescers of concurrent reads / writes (see aetcd._coalesce), or None.
        self._read_batcher = read_batcher
        self._write_batcher = write_batcher

    # The write coalescer's one-request paths: plain functions returning the
    # call's awaitable (Transport.unary), so no coroutine of their own.
    def _put(self, req: Any, timeout: float | None) -> Awaitable[Any]:
        t = self._t
        return t.unary(t.kv.Put, req, timeout, write=True)

    def _delete(self, req: Any, timeout: float | None) -> Awaitable[Any]:
        t = self._t
        return t.unary(t.kv.DeleteRange, req, timeout, write=True)

    async def do(self, op: Op, *, timeout: float | None = None) -> OpResult:
        """Run one :class:`Op` and return its typed result.

        Reads are retried on transient failures within the deadline; writes are
        not (see :class:`aetcd.OutcomeUnknownError`).
        """
        t = self._t
        ns = self._ns
        if ns is not None:
            op = ns.op(op)
        kind = op.kind
        fields = op._fields
        req: Any
        if kind is _GET:
            req = _RangeRequest(**fields)
        elif kind is _PUT:
            _check_put_size(t.config, fields)
            req = _PutRequest(**fields)
        elif kind is _DELETE:
            req = _DeleteRangeRequest(**fields)
        else:
            req = txn_request(t.config, fields, op._levels)
        result: OpResult
        if kind is _GET:
            result = get_view(await t.unary(t.kv.Range, req, timeout, write=False))
        elif kind is _PUT:
            result = put_view(await t.unary(t.kv.Put, req, timeout, write=True))
        elif kind is _DELETE:
            result = delete_view(await t.unary(t.kv.DeleteRange, req, timeout, write=True))
        else:
            resp = await t.unary(t.kv.Txn, req, timeout, write=op._writes)
            result = txn_view(resp)
        return result if ns is None else ns.result(result)

    async def get(
        self,
        key: str | bytes,
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
        fields = _range_fields(
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
        ns = self._ns
        if ns is not None:
            fields = ns.fields("request_range", fields)
        batcher = self._read_batcher
        result: GetResult
        if batcher is not None and "serializable" not in fields:
            # The RangeRequest is built by the coalescer: alone, or in place
            # inside its batch's TxnRequest. A batched read comes back as a
            # GetResult already, a read sent alone as the RangeResponse.
            response = await batcher.read(fields, timeout)
            result = response if type(response) is GetResult else get_view(response)
        else:
            req = _RangeRequest(**fields)
            result = get_view(await t.unary(t.kv.Range, req, timeout, write=False))
        return result if ns is None else ns.get(result)

    async def put(
        self,
        key: str | bytes,
        value: str | bytes,
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
        fields = _put_fields(key, value, lease, prev_kv, ignore_value, ignore_lease)
        t = self._t
        config = t.config
        ns = self._ns
        if ns is not None:
            fields["key"] = ns.prefix + fields["key"]  # a new dict: changed in place
        if len(fields["key"]) + len(fields["value"]) > config.max_request_bytes:
            _check_put_size(config, fields)  # raises
        req = _PutRequest(**fields)
        batcher = self._write_batcher
        if batcher is not None:
            response = await batcher.call(req, timeout, self._put)
        else:
            response = await t.unary(t.kv.Put, req, timeout, write=True)
        if ns is not None:
            return ns.put(put_view(response))
        return put_view(response)

    async def delete(
        self,
        key: str | bytes,
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
        fields = _delete_fields(key, prefix, range_end, from_key, prev_kv)
        t = self._t
        ns = self._ns
        if ns is not None:
            fields = ns.fields("request_delete_range", fields)
        req = _DeleteRangeRequest(**fields)
        batcher = self._write_batcher
        if batcher is not None:
            response = await batcher.call(req, timeout, self._delete)
        else:
            response = await t.unary(t.kv.DeleteRange, req, timeout, write=True)
        if ns is not None:
            return ns.delete(delete_view(response))
        return delete_view(response)

    async def txn(
        self,
        compare: Iterable[Compare] = (),
        success: Iterable[Op] = (),
        failure: Iterable[Op] = (),
        timeout: float | None = None,
    ) -> TxnResult:
        """Atomically: if every compare holds, run *success*, else *failure*.

        ``result.succeeded`` says which branch ran; ``result.responses`` holds one
        result per op of that branch, in order. All writes of a txn share one
        revision. Ops may be nested txns (``Op.txn``).
        """
        fields, writes, levels = _txn_fields(compare, success, failure)
        t = self._t
        ns = self._ns
        if ns is not None:
            fields = ns.fields("request_txn", fields)
        req = txn_request(t.config, fields, levels)
        result = txn_view(await t.unary(t.kv.Txn, req, timeout, write=writes))
        return result if ns is None else ns.txn(result)

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
        req = CompactionRequest(revision=rev, physical=physical)
        resp: Any = await t.unary(t.kv.Compact, req, timeout, write=True)
        return compact_result(resp)


def _check_put_size(config: ClientConfig, fields: dict[str, Any]) -> None:
    """Refuse a put the server would refuse for its size (``--max-request-bytes``)."""
    size = len(fields["key"]) + len(fields["value"])
    if size > config.max_request_bytes:
        raise _rejected(
            RequestTooLargeError,
            "etcdserver: request is too large",
            f"put of {size} bytes exceeds max_request_bytes={config.max_request_bytes}",
        )
