"""Response messages to results: the builders of the views, and the small decoders.

The key-value results are views (see :mod:`aetcd._wire.view`): a builder makes
the objects and sets their slots in C, never calling ``__init__``. The other
results are plain frozen dataclasses, decoded here field by field.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final

from ..types import (
    Alarm,
    AlarmType,
    AuthStatus,
    CompactResult,
    DeleteResult,
    DowngradeResult,
    Event,
    GetResult,
    HashKVResult,
    KeyValue,
    LeaseInfo,
    Member,
    OpResult,
    Permission,
    PutResult,
    ResponseHeader,
    RolePermission,
    Status,
    TxnResult,
)
from .view import LAZY, drain, new, set_h, set_pb, setter

if TYPE_CHECKING:
    from .._pb import auth_pb2, kv_pb2, rpc_pb2

_set_get_kvs = setter(GetResult, "kvs")
_set_put_prev = setter(PutResult, "prev_kv")
_set_del_prev = setter(DeleteResult, "prev_kvs")
_set_txn_r = setter(TxnResult, "_r")
_set_event_kv = setter(Event, "kv")


def header_view(pb: rpc_pb2.ResponseHeader) -> ResponseHeader:
    h = new(ResponseHeader)
    set_pb(h, pb)
    return h


def kv_view(pb: kv_pb2.KeyValue) -> KeyValue:
    kv = new(KeyValue)
    set_pb(kv, pb)
    return kv


#: From this many keys on, the views of a response are built with the cyclic
#: garbage collector paused (see :func:`kv_views`).
PAUSE_GC_FROM: Final = 128
_gc_isenabled = gc.isenabled
_gc_disable = gc.disable
_gc_enable = gc.enable


def kv_views(pbs: Sequence[kv_pb2.KeyValue]) -> list[KeyValue]:
    """One view per message of a repeated KeyValue field, built in C loops.

    Each key costs two GC-tracked objects (the view and the message it reads),
    so building the views of a large range used to trigger ~2 young-generation
    collections per 1,000 keys, each one traversing the views just built and
    promoting them; the promotions made full collections of the whole heap
    frequent (about half the Python cost of a 1,000-key range was the
    collector). None of these objects can be garbage while they are being
    built, so for a large range the collector is paused for the two C loops
    below (when it is enabled; it is enabled again right after, even if they
    fail) and any collection due runs later, as usual: usually after the
    caller dropped the result, when there is little left to traverse.
    """
    n = len(pbs)
    if n == 1:
        return [kv_view(pbs[0])]
    if not n:
        return []
    if n < PAUSE_GC_FROM or not _gc_isenabled():
        kvs: list[KeyValue] = list(map(new, repeat(KeyValue, n)))
        drain(map(set_pb, kvs, pbs))
        return kvs
    _gc_disable()
    try:
        kvs = list(map(new, repeat(KeyValue, n)))
        drain(map(set_pb, kvs, pbs))
    finally:
        _gc_enable()
    return kvs


def get_view(pb: rpc_pb2.RangeResponse, header: Any = LAZY) -> GetResult:
    """The GetResult view of *pb*; *header*: a txn's header view for the ranges
    of a txn (etcd fills only the revision of a txn op's own header)."""
    r = new(GetResult)
    set_pb(r, pb)
    set_h(r, header)
    pbs = pb.kvs
    if len(pbs) == 1:  # the common single-key get, inline
        kv = new(KeyValue)
        set_pb(kv, pbs[0])
        _set_get_kvs(r, [kv])
    else:
        _set_get_kvs(r, kv_views(pbs))
    return r


def put_view(pb: rpc_pb2.PutResponse) -> PutResult:
    r = new(PutResult)
    set_pb(r, pb)
    set_h(r, LAZY)
    _set_put_prev(r, kv_view(pb.prev_kv) if pb.HasField("prev_kv") else None)
    return r


def delete_view(pb: rpc_pb2.DeleteRangeResponse) -> DeleteResult:
    r = new(DeleteResult)
    set_pb(r, pb)
    set_h(r, LAZY)
    _set_del_prev(r, kv_views(pb.prev_kvs))
    return r


def txn_view(pb: rpc_pb2.TxnResponse, header: Any = LAZY) -> TxnResult:
    """A TxnResult view; *header*: the parent's for a nested txn, else ``LAZY``."""
    r = new(TxnResult)
    set_pb(r, pb)
    set_h(r, header)
    _set_txn_r(r, LAZY)
    return r


def op_view(pb: rpc_pb2.ResponseOp, parent: TxnResult) -> OpResult:
    """The result of one op of the txn *parent*."""
    which = pb.WhichOneof("response")
    if which == "response_range":
        return get_view(pb.response_range)
    if which == "response_put":
        return put_view(pb.response_put)
    if which == "response_delete_range":
        return delete_view(pb.response_delete_range)
    if which == "response_txn":
        # etcd leaves the header of a nested txn's response empty: it shares its
        # parent's.
        sub = pb.response_txn
        return txn_view(sub, LAZY if sub.header.revision else parent.header)
    raise ValueError(f"unexpected txn response op {which!r}")


def op_views(txn: TxnResult) -> list[OpResult]:
    """The results of the ops of a txn view (``TxnResult.responses``, decoded on first read)."""
    return [op_view(op, txn) for op in txn._pb.responses]


def event_view(pb: kv_pb2.Event) -> Event:
    event = new(Event)
    set_pb(event, pb)
    kv = new(KeyValue)
    set_pb(kv, pb.kv)
    _set_event_kv(event, kv)
    return event


def event_view_of(pb: kv_pb2.Event, kv_pb: kv_pb2.KeyValue) -> Event:
    """:func:`event_view` of *pb* whose ``kv`` the caller already read (*kv_pb*).

    Reading a sub-message makes a new Python object each time unless one is
    still alive; the watch stream reads ``kv`` for the revision anyway.
    """
    event = new(Event)
    set_pb(event, pb)
    kv = new(KeyValue)
    set_pb(kv, kv_pb)
    _set_event_kv(event, kv)
    return event


# -- plain results -------------------------------------------------------------------


def compact_result(pb: rpc_pb2.CompactionResponse) -> CompactResult:
    return CompactResult(header_view(pb.header))


def lease_info(pb: rpc_pb2.LeaseTimeToLiveResponse) -> LeaseInfo:
    return LeaseInfo(header_view(pb.header), pb.ID, pb.TTL, pb.grantedTTL, list(pb.keys))


def member(pb: rpc_pb2.Member) -> Member:
    return Member(pb.ID, pb.name, list(pb.peerURLs), list(pb.clientURLs), pb.isLearner)


def alarm(pb: rpc_pb2.AlarmMember) -> Alarm:
    return Alarm(pb.memberID, AlarmType(pb.alarm))


def status(pb: rpc_pb2.StatusResponse) -> Status:
    return Status(
        header_view(pb.header),
        pb.version,
        pb.dbSize,
        pb.dbSizeInUse,
        pb.leader,
        pb.raftIndex,
        pb.raftTerm,
        pb.raftAppliedIndex,
        pb.isLearner,
        list(pb.errors),
    )


def hash_kv_result(pb: rpc_pb2.HashKVResponse) -> HashKVResult:
    return HashKVResult(header_view(pb.header), pb.hash, pb.compact_revision, pb.hash_revision)


def downgrade_result(pb: rpc_pb2.DowngradeResponse) -> DowngradeResult:
    return DowngradeResult(header_view(pb.header), pb.version)


def role_permission(pb: auth_pb2.Permission) -> RolePermission:
    return RolePermission(Permission(pb.permType), pb.key, pb.range_end)


def auth_status(pb: rpc_pb2.AuthStatusResponse) -> AuthStatus:
    return AuthStatus(header_view(pb.header), pb.enabled, pb.authRevision)
