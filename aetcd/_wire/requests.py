"""Requests to messages: :class:`aetcd.Op` and :class:`aetcd.Compare` as protobuf.

An ``Op`` holds its request as protobuf constructor arguments (validated once,
when it is built; see :mod:`aetcd.ops`), so a request is one constructor call
here, and a whole txn too: its branches hold the arguments of their ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..errors import RequestTooLargeError, TooManyOpsError, _rejected
from ..ops import Compare, Op, OpKind
from .messages import Compare as CompareMessage
from .messages import DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest

if TYPE_CHECKING:
    from ..config import ClientConfig

_REQUEST_CLASS: Final[dict[OpKind, Any]] = {
    OpKind.GET: RangeRequest,
    OpKind.PUT: PutRequest,
    OpKind.DELETE: DeleteRangeRequest,
    OpKind.TXN: TxnRequest,
}


def request(op: Op) -> Any:
    """The request message of *op*, built anew on each call."""
    return _REQUEST_CLASS[op.kind](**op._fields)


def request_op(op: Op) -> RequestOp:
    """*op* as a txn branch entry."""
    return RequestOp(**op._item)


def compare(c: Compare) -> CompareMessage:
    """*c* as the wire message."""
    return CompareMessage(**c._fields())


def txn_request(config: ClientConfig, fields: dict[str, Any], levels: int) -> TxnRequest:
    """Build a TxnRequest in one protobuf call and check it against the server's limits.

    *levels* is ``Op._levels`` of the txn: only when it exceeds ``max_txn_ops``
    is the message walked, to say where.
    """
    req = TxnRequest(**fields)
    if levels > config.max_txn_ops:
        check_txn_ops(req, config.max_txn_ops)  # raises, saying where
        raise _rejected(
            TooManyOpsError,
            "etcdserver: too many operations in txn request",
            f"txn has more than max_txn_ops={config.max_txn_ops} operations",
        )
    size = req.ByteSize()
    if size > config.max_request_bytes:
        raise _rejected(
            RequestTooLargeError,
            "etcdserver: request is too large",
            f"txn of {size} bytes exceeds max_request_bytes={config.max_request_bytes}",
        )
    return req


def check_txn_ops(req: TxnRequest, max_ops: int) -> None:
    """Apply etcd's ``--max-txn-ops`` rule locally (server ``checkTxnRequest``).

    A level may have at most *max_ops* compares and at most *max_ops* ops per
    branch; a nested txn gets what its parent level left of the budget.
    """
    used = max(len(req.compare), len(req.success), len(req.failure))
    if used > max_ops:
        raise _rejected(
            TooManyOpsError,
            "etcdserver: too many operations in txn request",
            f"txn has {used} operations at one level, more than max_txn_ops={max_ops}",
        )
    for branch in (req.success, req.failure):
        for op in branch:
            if op.WhichOneof("request") == "request_txn":
                check_txn_ops(op.request_txn, max_ops - used)
