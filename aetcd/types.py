"""Typed, immutable results. Protobuf messages never leave the library.

Every result carries the :class:`ResponseHeader` of the response it came from;
``header.revision`` is the store revision the call observed (for writes: the
revision the write created).

The key-value results (:class:`ResponseHeader`, :class:`KeyValue`,
:class:`GetResult`, :class:`PutResult`, :class:`DeleteResult`,
:class:`TxnResult`) are *views* of the response message: building one costs an
object (per key, for a range) and each field is read from the message when it
is read. Decoding every field up front cost more than the RPC itself for large
ranges (a 1,000-key range read key by key: ~4.6x the cost of reading the bare
message, ~2.3x with views; bench/micro/decode.py). A view keeps the whole
response message alive (for a key of a 1,000-key range: all of it);
``copy.copy(kv)`` returns a copy that holds only its own fields. Views are
frozen dataclasses (not ``slots=True`` ones: their fields are properties over
the message): equal by value to a result built by hand, hashable where the
fields are, with the usual ``repr``, ``dataclasses.replace`` and pickling
(which stores the field values, never the message).
"""

from __future__ import annotations

import dataclasses
import enum
import gc
from collections import deque, namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias, TypeVar

if TYPE_CHECKING:
    from ._pb import kv_pb2, rpc_pb2

_T = TypeVar("_T")


def _fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen slotted dataclass, ~2x faster than ``cls(...)``.

    The generated ``__init__`` of a frozen dataclass goes through
    ``object.__setattr__`` for every field; this sets the slots directly. The
    instances are the same: frozen, comparable, hashable.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    for name in names:
        env[f"set_{name}"] = cls.__dict__[name].__set__
    args = ", ".join(names)
    body = "".join(f"    set_{n}(o, {n})\n" for n in names)
    exec(f"def make({args}):\n    o = new(cls)\n{body}    return o\n", env)
    make: Callable[..., _T] = env["make"]
    return make


class SortOrder(enum.IntEnum):
    """Order of a range result (etcd ``RangeRequest.SortOrder``)."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(enum.IntEnum):
    """Field a range result is sorted by (etcd ``RangeRequest.SortTarget``)."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class EventType(enum.IntEnum):
    """Kind of a watch event (etcd ``mvccpb.Event.EventType``)."""

    PUT = 0
    DELETE = 1


# -- views -----------------------------------------------------------------------------

_new = object.__new__
#: Runs an iterator to its end in C (the slot setters below return None).
_drain: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
#: Slot value of a part of a view not decoded yet.
_LAZY: Final[Any] = object()


class _View:
    """Base of the results that read their fields from a protobuf message.

    ``_pb`` is the message, or for a value built by hand (or copied) a
    namedtuple with the same field names. Fields are class-level properties
    (``attrgetter("_pb.name")``: no Python frame per read) or slots.
    """

    __slots__ = ("_pb",)
    if TYPE_CHECKING:
        __match_args__: ClassVar[tuple[str, ...]]
        _pb: Any

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles and copies hold the field values (a copy is built by hand and
        # so no longer keeps the response message alive).
        return (type(self), tuple([getattr(self, name) for name in self.__match_args__]))


class _Result(_View):
    """Base of the views of whole responses: ``header`` is decoded on first read."""

    __slots__ = ("_h",)  # the ResponseHeader, or _LAZY
    if TYPE_CHECKING:
        _h: Any


# C-level setters of the slots (they bypass the frozen __setattr__).
_set_pb: Callable[[_View, Any], None] = _View.__dict__["_pb"].__set__
_set_h: Callable[[_Result, Any], None] = _Result.__dict__["_h"].__set__


def _header(self: _Result) -> ResponseHeader:
    h = self._h
    if h is _LAZY:
        h = _new(ResponseHeader)
        _set_pb(h, self._pb.header)
        _set_h(self, h)
    return h  # type: ignore[no-any-return]


def _view(cls: type[_T]) -> type[_T]:
    """Turn the fields of the dataclass *cls* that are not slots into reads of ``_pb``.

    ``header`` is decoded on first read (most callers never read it); any other
    field is ``property(attrgetter("_pb.<name>"))``: no Python frame per read.
    """
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in cls.__dict__:
            continue  # a slot, filled when the view is built
        if f.name == "header":
            prop = property(_header, doc="The header of the response (:class:`ResponseHeader`).")
        else:
            prop = property(attrgetter(f"_pb.{f.name}"), doc=f"The ``{f.name}`` (``{f.type}``).")
        setattr(cls, f.name, prop)
    return cls


_HeaderFields = namedtuple("_HeaderFields", "cluster_id member_id revision raft_term")


@_view
@dataclass(frozen=True, init=False)
class ResponseHeader(_View):
    """Which member answered, and the store revision and raft term it saw."""

    __slots__ = ()

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int

    def __init__(self, cluster_id: int, member_id: int, revision: int, raft_term: int) -> None:
        _set_pb(self, _HeaderFields(cluster_id, member_id, revision, raft_term))

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.ResponseHeader) -> ResponseHeader:
        return _header_view(pb)


_KeyValueFields = namedtuple(
    "_KeyValueFields", "key value create_revision mod_revision version lease"
)


@_view
@dataclass(frozen=True, init=False)
class KeyValue(_View):
    """One key as stored by etcd.

    ``create_revision`` is the revision that created the key (the fencing token
    of locks), ``mod_revision`` the last one that changed it, ``version`` the
    number of changes since creation, ``lease`` the attached lease id (0: none).

    A ``KeyValue`` read from a response keeps that whole response alive; to keep
    a few keys of a large range for long, keep ``copy.copy(kv)``, which holds
    only its own fields. (Not a slotted dataclass because its fields are read
    from the response on access; it behaves as one: frozen, equal by value,
    hashable, picklable.)
    """

    __slots__ = ()

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    def __init__(
        self,
        key: bytes,
        value: bytes,
        create_revision: int,
        mod_revision: int,
        version: int,
        lease: int,
    ) -> None:
        _set_pb(self, _KeyValueFields(key, value, create_revision, mod_revision, version, lease))

    def __copy__(self) -> KeyValue:
        return _kv_fields(self, self.key)

    @classmethod
    def _from_pb(cls, pb: kv_pb2.KeyValue) -> KeyValue:
        return _kv_view(pb)


_GetFields = namedtuple("_GetFields", "count more")


@_view
@dataclass(frozen=True, init=False)
class GetResult(_Result):
    """The answer to a range read: iterable over :attr:`kvs`, and ``len()`` works.

    ``count`` is the number of keys in the range (even when ``limit`` cut
    ``kvs`` short, or with ``count_only``); ``more`` says whether ``limit`` left
    keys out. A view of the response (see :mod:`aetcd.types`).
    """

    __slots__ = ("kvs",)

    header: ResponseHeader
    kvs: list[KeyValue]
    count: int
    more: bool

    def __init__(self, header: ResponseHeader, kvs: list[KeyValue], count: int, more: bool) -> None:
        _set_pb(self, _GetFields(count, more))
        _set_h(self, header)
        _set_get_kvs(self, kvs)

    def __iter__(self) -> Iterator[KeyValue]:
        return iter(self.kvs)

    def __len__(self) -> int:
        return len(self.kvs)

    @property
    def first(self) -> KeyValue | None:
        """The first key of the result, or ``None`` when there is none."""
        kvs = self.kvs
        return kvs[0] if kvs else None

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.RangeResponse) -> GetResult:
        return _get_view(pb)


@_view
@dataclass(frozen=True, init=False)
class PutResult(_Result):
    """The answer to a put; ``prev_kv`` is set only when asked for and the key existed.

    A view of the response (see :mod:`aetcd.types`).
    """

    __slots__ = ("prev_kv",)

    header: ResponseHeader
    prev_kv: KeyValue | None

    def __init__(self, header: ResponseHeader, prev_kv: KeyValue | None) -> None:
        _set_pb(self, None)
        _set_h(self, header)
        _set_put_prev(self, prev_kv)

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.PutResponse) -> PutResult:
        return _put_view(pb)


_DeleteFields = namedtuple("_DeleteFields", "deleted")


@_view
@dataclass(frozen=True, init=False)
class DeleteResult(_Result):
    """The answer to a delete: how many keys went, and (when asked for) what they held.

    A view of the response (see :mod:`aetcd.types`).
    """

    __slots__ = ("prev_kvs",)

    header: ResponseHeader
    deleted: int
    prev_kvs: list[KeyValue]

    def __init__(self, header: ResponseHeader, deleted: int, prev_kvs: list[KeyValue]) -> None:
        _set_pb(self, _DeleteFields(deleted))
        _set_h(self, header)
        _set_del_prev(self, prev_kvs)

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.DeleteRangeResponse) -> DeleteResult:
        return _delete_view(pb)


_TxnFields = namedtuple("_TxnFields", "succeeded")


@_view
@dataclass(frozen=True, init=False)
class TxnResult(_Result):
    """The answer to a txn: which branch ran, and one result per op of that branch.

    A view of the response (see :mod:`aetcd.types`); ``responses`` are decoded
    on first read.
    """

    __slots__ = ("_r",)  # the responses, or _LAZY
    if TYPE_CHECKING:
        _r: Any

    header: ResponseHeader
    succeeded: bool
    responses: list[OpResult]

    def __init__(self, header: ResponseHeader, succeeded: bool, responses: list[OpResult]) -> None:
        _set_pb(self, _TxnFields(succeeded))
        _set_h(self, header)
        _set_txn_r(self, responses)

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.TxnResponse, parent: ResponseHeader | None = None) -> TxnResult:
        # etcd leaves the header of a nested txn's response empty: it shares its
        # parent's, so it gets the parent's here.
        if parent is None or pb.header.revision:
            return _txn_view(pb, _LAZY)
        return _txn_view(pb, parent)


def _responses(self: TxnResult) -> list[OpResult]:
    responses = self._r
    if responses is _LAZY:
        responses = [_op_view(op, self) for op in self._pb.responses]
        _set_txn_r(self, responses)
    return responses  # type: ignore[no-any-return]


setattr(  # noqa: B010 - a property over a dataclass field (mypy must keep seeing the field)
    TxnResult,
    "responses",
    property(_responses, doc="One result per op of the branch that ran, in op order."),
)

OpResult: TypeAlias = GetResult | PutResult | DeleteResult | TxnResult


@dataclass(frozen=True, slots=True)
class CompactResult:
    """The answer to a compaction."""

    header: ResponseHeader

    @classmethod
    def _from_pb(cls, pb: Any) -> CompactResult:
        return cls(ResponseHeader._from_pb(pb.header))


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The server's view of a lease (``client.time_to_live``).

    ``ttl`` is the seconds left, ``granted_ttl`` the TTL it was granted with,
    ``keys`` the keys attached to it (only when asked for).
    """

    header: ResponseHeader
    id: int
    ttl: int
    granted_ttl: int
    keys: list[bytes]

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.LeaseTimeToLiveResponse) -> LeaseInfo:
        return cls(ResponseHeader._from_pb(pb.header), pb.ID, pb.TTL, pb.grantedTTL, list(pb.keys))


# -- building views: C-level slot setters, no __init__ ----------------------------------


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_set_get_kvs = _setter(GetResult, "kvs")
_set_put_prev = _setter(PutResult, "prev_kv")
_set_del_prev = _setter(DeleteResult, "prev_kvs")
_set_txn_r = _setter(TxnResult, "_r")


def _header_view(pb: rpc_pb2.ResponseHeader) -> ResponseHeader:
    h = _new(ResponseHeader)
    _set_pb(h, pb)
    return h


def _kv_view(pb: kv_pb2.KeyValue) -> KeyValue:
    kv = _new(KeyValue)
    _set_pb(kv, pb)
    return kv


#: From this many keys on, the views of a response are built with the cyclic
#: garbage collector paused (see :func:`_kv_views`).
_PAUSE_GC_FROM: Final = 128
_gc_isenabled = gc.isenabled
_gc_disable = gc.disable
_gc_enable = gc.enable


def _kv_views(pbs: Sequence[kv_pb2.KeyValue]) -> list[KeyValue]:
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
        return [_kv_view(pbs[0])]
    if not n:
        return []
    if n < _PAUSE_GC_FROM or not _gc_isenabled():
        kvs: list[KeyValue] = list(map(_new, repeat(KeyValue, n)))
        _drain(map(_set_pb, kvs, pbs))
        return kvs
    _gc_disable()
    try:
        kvs = list(map(_new, repeat(KeyValue, n)))
        _drain(map(_set_pb, kvs, pbs))
    finally:
        _gc_enable()
    return kvs


def _kv_fields(kv: KeyValue, key: bytes) -> KeyValue:
    """A copy of *kv* holding its own fields, with *key* (namespaces strip theirs)."""
    copy = _new(KeyValue)
    _set_pb(
        copy,
        _KeyValueFields(key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease),
    )
    return copy


def _get_view(pb: rpc_pb2.RangeResponse, header: Any = _LAZY) -> GetResult:
    """The GetResult view of *pb*; *header*: a txn's header view for the ranges
    of a txn (etcd fills only the revision of a txn op's own header)."""
    r = _new(GetResult)
    _set_pb(r, pb)
    _set_h(r, header)
    pbs = pb.kvs
    if len(pbs) == 1:  # the common single-key get, inline
        kv = _new(KeyValue)
        _set_pb(kv, pbs[0])
        _set_get_kvs(r, [kv])
    else:
        _set_get_kvs(r, _kv_views(pbs))
    return r


def _put_view(pb: rpc_pb2.PutResponse) -> PutResult:
    r = _new(PutResult)
    _set_pb(r, pb)
    _set_h(r, _LAZY)
    _set_put_prev(r, _kv_view(pb.prev_kv) if pb.HasField("prev_kv") else None)
    return r


def _delete_view(pb: rpc_pb2.DeleteRangeResponse) -> DeleteResult:
    r = _new(DeleteResult)
    _set_pb(r, pb)
    _set_h(r, _LAZY)
    _set_del_prev(r, _kv_views(pb.prev_kvs))
    return r


def _txn_view(pb: rpc_pb2.TxnResponse, header: Any) -> TxnResult:
    """A TxnResult view; *header*: the parent's for a nested txn, else ``_LAZY``."""
    r = _new(TxnResult)
    _set_pb(r, pb)
    _set_h(r, header)
    _set_txn_r(r, _LAZY)
    return r


def _op_view(pb: rpc_pb2.ResponseOp, parent: TxnResult) -> OpResult:
    which = pb.WhichOneof("response")
    if which == "response_range":
        return _get_view(pb.response_range)
    if which == "response_put":
        return _put_view(pb.response_put)
    if which == "response_delete_range":
        return _delete_view(pb.response_delete_range)
    if which == "response_txn":
        # etcd leaves the header of a nested txn's response empty: it shares its
        # parent's.
        sub = pb.response_txn
        return _txn_view(sub, _LAZY if sub.header.revision else parent.header)
    raise ValueError(f"unexpected txn response op {which!r}")


_V = TypeVar("_V", bound=_View)


def _evolve(view: _V, **slots: Any) -> _V:
    """A copy of *view* with some slots replaced (namespaces strip their keys this way)."""
    copy = _new(type(view))
    for klass in type(view).__mro__:
        for name in klass.__dict__.get("__slots__", ()):
            value = slots[name] if name in slots else getattr(view, name)
            klass.__dict__[name].__set__(copy, value)
    return copy


def _kvs_from_pb(pbs: Sequence[kv_pb2.KeyValue]) -> list[KeyValue]:
    """Views of a repeated KeyValue field."""
    return _kv_views(pbs)


class WatchFilter(enum.IntEnum):
    """Server-side filters of a watch (etcd ``WatchCreateRequest.FilterType``)."""

    NOPUT = 0  #: drop PUT events
    NODELETE = 1  #: drop DELETE events


_EventFields = namedtuple("_EventFields", "type prev_kv")


@dataclass(frozen=True, init=False)
class Event(_View):
    """One change seen by a watch: ``kv`` after it (for a DELETE: the key with
    ``mod_revision`` of the delete), and ``prev_kv`` before it when the watch
    asked for ``prev_kv=True``.

    A view of the event message like :class:`KeyValue` (``copy.copy(event)``
    holds only its own fields): ``kv`` is built with the event, ``type`` and
    ``prev_kv`` are read on access.
    """

    __slots__ = ("kv",)

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    def __init__(self, type: EventType, kv: KeyValue, prev_kv: KeyValue | None) -> None:
        _set_pb(self, _EventFields(type, prev_kv))
        _set_event_kv(self, kv)

    def __copy__(self) -> Event:
        prev = self.prev_kv
        return Event(self.type, self.kv.__copy__(), None if prev is None else prev.__copy__())

    @classmethod
    def _from_pb(cls, pb: kv_pb2.Event) -> Event:
        return _event_view(pb)


def _event_type(self: Event) -> EventType:
    return EventType.DELETE if self._pb.type else EventType.PUT


def _event_prev_kv(self: Event) -> KeyValue | None:
    pb = self._pb
    if type(pb) is _EventFields:
        return pb.prev_kv  # type: ignore[no-any-return]
    return _kv_view(pb.prev_kv) if pb.HasField("prev_kv") else None


# Properties over dataclass fields (mypy must keep seeing the fields).
setattr(Event, "type", property(_event_type, doc="PUT or DELETE (:class:`EventType`)."))  # noqa: B010
setattr(  # noqa: B010
    Event, "prev_kv", property(_event_prev_kv, doc="The key before the change, if asked for.")
)
_set_event_kv: Callable[[Event, KeyValue], None] = Event.__dict__["kv"].__set__


def _event_view(pb: kv_pb2.Event) -> Event:
    event = _new(Event)
    _set_pb(event, pb)
    kv = _new(KeyValue)
    _set_pb(kv, pb.kv)
    _set_event_kv(event, kv)
    return event


def _event_view_of(pb: kv_pb2.Event, kv_pb: kv_pb2.KeyValue) -> Event:
    """:func:`_event_view` of *pb* whose ``kv`` the caller already read (*kv_pb*).

    Reading a sub-message makes a new Python object each time unless one is
    still alive; the watch stream reads ``kv`` for the revision anyway.
    """
    event = _new(Event)
    _set_pb(event, pb)
    kv = _new(KeyValue)
    _set_pb(kv, kv_pb)
    _set_event_kv(event, kv)
    return event


@dataclass(frozen=True, slots=True)
class WatchResponse:
    """A batch of events of one watch, all of one or more whole revisions.

    A response without events is a progress notification: every change up to
    ``header.revision`` has been delivered.
    """

    header: ResponseHeader
    events: list[Event]
    #: Always 0 in delivered responses: compaction ends the watch with
    #: :class:`aetcd.CompactedError` instead.
    compact_revision: int = 0

    @property
    def is_progress_notify(self) -> bool:
        """Whether this is a progress notification (no events)."""
        return not self.events


# -- cluster, maintenance, auth -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One cluster member as the cluster knows it.

    ``name`` and ``client_urls`` stay empty until a newly added member has
    started and joined. ``is_learner`` marks a non-voting learner.
    """

    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]
    is_learner: bool

    @property
    def started(self) -> bool:
        """Whether the member has started (it publishes its name when it does)."""
        return bool(self.name)

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.Member) -> Member:
        return cls(pb.ID, pb.name, list(pb.peerURLs), list(pb.clientURLs), pb.isLearner)


class AlarmType(enum.IntEnum):
    """Kind of a cluster alarm (etcd ``AlarmType``)."""

    NONE = 0
    NOSPACE = 1  #: the backend quota is exhausted; writes fail until disarmed
    CORRUPT = 2  #: a member detected data corruption


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm raised on one member."""

    member_id: int
    type: AlarmType

    @property
    def alarm(self) -> AlarmType:
        """The alarm type, under etcd's field name."""
        return self.type

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.AlarmMember) -> Alarm:
        return cls(pb.memberID, AlarmType(pb.alarm))


@dataclass(frozen=True, slots=True)
class Status:
    """The state of the member that answered (``header.member_id``).

    ``db_size`` is the backend file size in bytes and ``db_size_in_use`` the part
    of it holding live data (the rest is reclaimed by :meth:`defragment`).
    ``leader`` is the leader's member id as this member sees it (0: none).
    ``errors`` lists raised alarms and health problems as text.
    """

    header: ResponseHeader
    version: str
    db_size: int
    db_size_in_use: int
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    is_learner: bool
    errors: list[str]

    @property
    def member_id(self) -> int:
        """Id of the member that answered."""
        return self.header.member_id

    @property
    def is_leader(self) -> bool:
        """Whether the member that answered is the leader."""
        return self.leader != 0 and self.leader == self.header.member_id

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.StatusResponse) -> Status:
        return cls(
            ResponseHeader._from_pb(pb.header),
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


@dataclass(frozen=True, slots=True)
class HashKVResult:
    """A hash of one member's key-value history up to a revision.

    Members that agree on the data return the same ``hash`` for the same
    revision and ``compact_revision``. ``compact_revision`` is -1 when the store
    was never compacted; ``hash_revision`` is the revision hashed (0 from servers
    older than late 3.5).
    """

    header: ResponseHeader
    hash: int
    compact_revision: int
    hash_revision: int

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.HashKVResponse) -> HashKVResult:
        header = ResponseHeader._from_pb(pb.header)
        return cls(header, pb.hash, pb.compact_revision, pb.hash_revision)


class DowngradeAction(enum.IntEnum):
    """What :meth:`aetcd.Client.downgrade` asks for (etcd ``DowngradeRequest.DowngradeAction``)."""

    VALIDATE = 0  #: check that the cluster version can go down to the target; changes nothing
    ENABLE = 1  #: start lowering the cluster version to the target
    CANCEL = 2  #: stop the downgrade in progress


@dataclass(frozen=True, slots=True)
class DowngradeResult:
    """The answer to :meth:`aetcd.Client.downgrade`: ``version`` is the cluster
    version (``"3.5.0"``) when the request was served."""

    header: ResponseHeader
    version: str

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.DowngradeResponse) -> DowngradeResult:
        return cls(ResponseHeader._from_pb(pb.header), pb.version)


class Permission(enum.IntEnum):
    """What a role may do to a key range (etcd ``authpb.Permission.Type``)."""

    READ = 0
    WRITE = 1
    READWRITE = 2


@dataclass(frozen=True, slots=True)
class RolePermission:
    """One permission of a role: *perm* on the keys ``[key, range_end)``.

    An empty ``range_end`` means the single ``key``; ``b"\\0"`` means every key
    from ``key`` on.
    """

    perm: Permission
    key: bytes
    range_end: bytes

    @classmethod
    def _from_pb(cls, pb: Any) -> RolePermission:
        return cls(Permission(pb.permType), pb.key, pb.range_end)


@dataclass(frozen=True, slots=True)
class AuthStatus:
    """Whether auth is enabled, and the auth store's revision (bumped by every change)."""

    header: ResponseHeader
    enabled: bool
    auth_revision: int

    @classmethod
    def _from_pb(cls, pb: rpc_pb2.AuthStatusResponse) -> AuthStatus:
        return cls(ResponseHeader._from_pb(pb.header), pb.enabled, pb.authRevision)


@dataclass(frozen=True, slots=True)
class User:
    """A user and the names of the roles granted to it (never its password)."""

    header: ResponseHeader
    name: str
    roles: list[str]


@dataclass(frozen=True, slots=True)
class Role:
    """A role and the key-range permissions granted to it."""

    header: ResponseHeader
    name: str
    permissions: list[RolePermission]
