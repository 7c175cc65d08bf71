"""Typed, immutable results. Protobuf messages never leave the library.

Every result carries the :class:`ResponseHeader` of the response it came from;
``header.revision`` is the store revision the call observed (for writes: the
revision the write created).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    from ._pb import kv_pb2, rpc_pb2

_T = TypeVar("_T")


def _fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen slotted dataclass, ~2x faster than ``cls(...)``.

    The generated ``__init__`` of a frozen dataclass goes through
    ``object.__setattr__`` for every field; this sets the slots directly. The
    instances are the same: frozen, comparable, hashable. Used on the hot path
    (every key of every result).
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


@dataclass(frozen=True, slots=True)
class ResponseHeader:
    """Which member answered, and the store revision and raft term it saw."""

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int

    @classmethod
    def from_pb(cls, pb: rpc_pb2.ResponseHeader) -> ResponseHeader:
        return _new_header(pb.cluster_id, pb.member_id, pb.revision, pb.raft_term)


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as stored by etcd.

    ``create_revision`` is the revision that created the key (the fencing token
    of locks), ``mod_revision`` the last one that changed it, ``version`` the
    number of changes since creation, ``lease`` the attached lease id (0: none).
    """

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_pb(cls, pb: kv_pb2.KeyValue) -> KeyValue:
        return _new_kv(pb.key, pb.value, pb.create_revision, pb.mod_revision, pb.version, pb.lease)


@dataclass(frozen=True, slots=True)
class GetResult:
    """The answer to a range read: iterable over :attr:`kvs`, and ``len()`` works.

    ``count`` is the number of keys in the range (even when ``limit`` cut
    ``kvs`` short, or with ``count_only``); ``more`` says whether ``limit`` left
    keys out.
    """

    header: ResponseHeader
    kvs: list[KeyValue]
    count: int
    more: bool

    def __iter__(self) -> Iterator[KeyValue]:
        return iter(self.kvs)

    def __len__(self) -> int:
        return len(self.kvs)

    @property
    def first(self) -> KeyValue | None:
        """The first key of the result, or ``None`` when there is none."""
        return self.kvs[0] if self.kvs else None

    @classmethod
    def from_pb(cls, pb: rpc_pb2.RangeResponse) -> GetResult:
        h = pb.header
        kv = _new_kv
        return _new_get_result(
            _new_header(h.cluster_id, h.member_id, h.revision, h.raft_term),
            [
                kv(p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease)
                for p in pb.kvs
            ],
            pb.count,
            pb.more,
        )


@dataclass(frozen=True, slots=True)
class PutResult:
    """The answer to a put; ``prev_kv`` is set only when asked for and the key existed."""

    header: ResponseHeader
    prev_kv: KeyValue | None

    @classmethod
    def from_pb(cls, pb: rpc_pb2.PutResponse) -> PutResult:
        prev = KeyValue.from_pb(pb.prev_kv) if pb.HasField("prev_kv") else None
        return _new_put_result(ResponseHeader.from_pb(pb.header), prev)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """The answer to a delete: how many keys went, and (when asked for) what they held."""

    header: ResponseHeader
    deleted: int
    prev_kvs: list[KeyValue]

    @classmethod
    def from_pb(cls, pb: rpc_pb2.DeleteRangeResponse) -> DeleteResult:
        return cls(
            ResponseHeader.from_pb(pb.header),
            pb.deleted,
            [KeyValue.from_pb(p) for p in pb.prev_kvs],
        )


@dataclass(frozen=True, slots=True)
class TxnResult:
    """The answer to a txn: which branch ran, and one result per op of that branch."""

    header: ResponseHeader
    succeeded: bool
    responses: list[OpResult]

    @classmethod
    def from_pb(cls, pb: rpc_pb2.TxnResponse, parent: ResponseHeader | None = None) -> TxnResult:
        # etcd leaves the header of a nested txn's response empty: it shares its
        # parent's, so it gets the parent's here.
        if parent is None or pb.header.revision:
            header = ResponseHeader.from_pb(pb.header)
        else:
            header = parent
        return cls(header, pb.succeeded, [_op_result(r, header) for r in pb.responses])


OpResult: TypeAlias = GetResult | PutResult | DeleteResult | TxnResult


def _op_result(pb: rpc_pb2.ResponseOp, parent: ResponseHeader) -> OpResult:
    which = pb.WhichOneof("response")
    if which == "response_range":
        return GetResult.from_pb(pb.response_range)
    if which == "response_put":
        return PutResult.from_pb(pb.response_put)
    if which == "response_delete_range":
        return DeleteResult.from_pb(pb.response_delete_range)
    if which == "response_txn":
        return TxnResult.from_pb(pb.response_txn, parent)
    raise ValueError(f"unexpected txn response op {which!r}")


@dataclass(frozen=True, slots=True)
class CompactResult:
    """The answer to a compaction."""

    header: ResponseHeader

    @classmethod
    def from_pb(cls, pb: Any) -> CompactResult:
        return cls(ResponseHeader.from_pb(pb.header))


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
    def from_pb(cls, pb: rpc_pb2.LeaseTimeToLiveResponse) -> LeaseInfo:
        return cls(ResponseHeader.from_pb(pb.header), pb.ID, pb.TTL, pb.grantedTTL, list(pb.keys))


_new_header = _fast_constructor(ResponseHeader)
_new_kv = _fast_constructor(KeyValue)
_new_get_result = _fast_constructor(GetResult)
_new_put_result = _fast_constructor(PutResult)


def kvs_from_pb(pbs: Sequence[kv_pb2.KeyValue]) -> list[KeyValue]:
    """Convert a repeated KeyValue field."""
    return [KeyValue.from_pb(p) for p in pbs]


class WatchFilter(enum.IntEnum):
    """Server-side filters of a watch (etcd ``WatchCreateRequest.FilterType``)."""

    NOPUT = 0  #: drop PUT events
    NODELETE = 1  #: drop DELETE events


@dataclass(frozen=True, slots=True)
class Event:
    """One change seen by a watch: ``kv`` after it (for a DELETE: the key with
    ``mod_revision`` of the delete), and ``prev_kv`` before it when the watch
    asked for ``prev_kv=True``.
    """

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    @classmethod
    def from_pb(cls, pb: kv_pb2.Event) -> Event:
        k = pb.kv
        prev = None
        if pb.HasField("prev_kv"):
            p = pb.prev_kv
            prev = _new_kv(p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease)
        return cls(
            EventType.DELETE if pb.type else EventType.PUT,
            _new_kv(k.key, k.value, k.create_revision, k.mod_revision, k.version, k.lease),
            prev,
        )


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
    def from_pb(cls, pb: rpc_pb2.Member) -> Member:
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
    def from_pb(cls, pb: rpc_pb2.AlarmMember) -> Alarm:
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
    def from_pb(cls, pb: rpc_pb2.StatusResponse) -> Status:
        return cls(
            ResponseHeader.from_pb(pb.header),
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
    def from_pb(cls, pb: rpc_pb2.HashKVResponse) -> HashKVResult:
        header = ResponseHeader.from_pb(pb.header)
        return cls(header, pb.hash, pb.compact_revision, pb.hash_revision)


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
    def from_pb(cls, pb: Any) -> RolePermission:
        return cls(Permission(pb.permType), pb.key, pb.range_end)


@dataclass(frozen=True, slots=True)
class AuthStatus:
    """Whether auth is enabled, and the auth store's revision (bumped by every change)."""

    header: ResponseHeader
    enabled: bool
    auth_revision: int

    @classmethod
    def from_pb(cls, pb: rpc_pb2.AuthStatusResponse) -> AuthStatus:
        return cls(ResponseHeader.from_pb(pb.header), pb.enabled, pb.authRevision)


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
