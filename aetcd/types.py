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
message, ~2.3x with views; bench/micro/decode.py; the engine is
``aetcd._wire.view``, the builders ``aetcd._wire.decode``). A view keeps the whole
response message alive (for a key of a 1,000-key range: all of it);
``copy.copy(kv)`` returns a copy that holds only its own fields. Views are
frozen dataclasses (not ``slots=True`` ones: their fields are properties over
the message): equal by value to a result built by hand, hashable where the
fields are, with the usual ``repr``, ``dataclasses.replace`` and pickling
(which stores the field values, never the message).
"""

from __future__ import annotations

import enum
from collections import namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ._wire.view import LAZY as _LAZY
from ._wire.view import _Result, _View, new, set_h, set_pb, setter, view


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


_HeaderFields = namedtuple("_HeaderFields", "cluster_id member_id revision raft_term")


@view()
@dataclass(frozen=True, init=False)
class ResponseHeader(_View):
    """Which member answered, and the store revision and raft term it saw."""

    __slots__ = ()

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int

    def __init__(self, cluster_id: int, member_id: int, revision: int, raft_term: int) -> None:
        set_pb(self, _HeaderFields(cluster_id, member_id, revision, raft_term))


#: Makes a response's view: its ``header`` a :class:`ResponseHeader` view built on first read.
_result_view = view(ResponseHeader)


_KeyValueFields = namedtuple(
    "_KeyValueFields", "key value create_revision mod_revision version lease"
)


@view()
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
        set_pb(self, _KeyValueFields(key, value, create_revision, mod_revision, version, lease))

    def __copy__(self) -> KeyValue:
        return self._with_key(self.key)

    def _with_key(self, key: bytes) -> KeyValue:
        """A copy holding its own fields, with *key* (namespaces strip theirs)."""
        copy = new(KeyValue)
        set_pb(
            copy,
            _KeyValueFields(
                key, self.value, self.create_revision, self.mod_revision, self.version, self.lease
            ),
        )
        return copy


_GetFields = namedtuple("_GetFields", "count more")


@_result_view
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
        set_pb(self, _GetFields(count, more))
        set_h(self, header)
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


@_result_view
@dataclass(frozen=True, init=False)
class PutResult(_Result):
    """The answer to a put; ``prev_kv`` is set only when asked for and the key existed.

    A view of the response (see :mod:`aetcd.types`).
    """

    __slots__ = ("prev_kv",)

    header: ResponseHeader
    prev_kv: KeyValue | None

    def __init__(self, header: ResponseHeader, prev_kv: KeyValue | None) -> None:
        set_pb(self, None)
        set_h(self, header)
        _set_put_prev(self, prev_kv)


_DeleteFields = namedtuple("_DeleteFields", "deleted")


@_result_view
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
        set_pb(self, _DeleteFields(deleted))
        set_h(self, header)
        _set_del_prev(self, prev_kvs)


_TxnFields = namedtuple("_TxnFields", "succeeded")


@_result_view
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
        set_pb(self, _TxnFields(succeeded))
        set_h(self, header)
        _set_txn_r(self, responses)


_set_get_kvs = setter(GetResult, "kvs")
_set_put_prev = setter(PutResult, "prev_kv")
_set_del_prev = setter(DeleteResult, "prev_kvs")
_set_txn_r = setter(TxnResult, "_r")


def _responses(self: TxnResult) -> list[OpResult]:
    responses = self._r
    if responses is _LAZY:
        responses = _op_views(self)
        _set_txn_r(self, responses)
    return responses  # type: ignore[no-any-return]


def _load_op_views(txn: TxnResult) -> list[OpResult]:
    """The wire layer's decoder of a txn's responses, bound on first use (a module-level
    import would be a cycle: aetcd._wire.decode builds the classes of this module)."""
    global _op_views
    from ._wire.decode import op_views

    _op_views = op_views
    return op_views(txn)


#: Decodes the responses of a txn view (``TxnResult.responses``, on first read).
_op_views: Callable[[TxnResult], list[OpResult]] = _load_op_views


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
        set_pb(self, _EventFields(type, prev_kv))
        _set_event_kv(self, kv)

    def __copy__(self) -> Event:
        prev = self.prev_kv
        return Event(self.type, self.kv.__copy__(), None if prev is None else prev.__copy__())


def _event_type(self: Event) -> EventType:
    return EventType.DELETE if self._pb.type else EventType.PUT


def _event_prev_kv(self: Event) -> KeyValue | None:
    pb = self._pb
    if type(pb) is _EventFields:
        return pb.prev_kv  # type: ignore[no-any-return]
    if not pb.HasField("prev_kv"):
        return None
    kv = new(KeyValue)
    set_pb(kv, pb.prev_kv)
    return kv


# Properties over dataclass fields (mypy must keep seeing the fields).
setattr(Event, "type", property(_event_type, doc="PUT or DELETE (:class:`EventType`)."))  # noqa: B010
setattr(  # noqa: B010
    Event, "prev_kv", property(_event_prev_kv, doc="The key before the change, if asked for.")
)
_set_event_kv: Callable[[Event, KeyValue], None] = setter(Event, "kv")


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


@dataclass(frozen=True, slots=True)
class AuthStatus:
    """Whether auth is enabled, and the auth store's revision (bumped by every change)."""

    header: ResponseHeader
    enabled: bool
    auth_revision: int


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
