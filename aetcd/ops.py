"""Requests as immutable values: :class:`Op` (get/put/delete/txn) and :class:`Compare`.

Building an ``Op`` validates and normalises its arguments once, so a bad call
fails before any I/O and a good one is sent as is. ``Client.get/put/delete/txn``
are thin wrappers that build an ``Op`` and run it through one execution path;
the same values nest inside transactions::

    from aetcd import Compare, Op
    await client.txn(
        compare=[Compare.create_revision("lock") == 0],
        success=[Op.put("lock", "me")],
        failure=[Op.get("lock")],
    )
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ._keys import FROM_KEY, INT64_MAX, prefix_range_end, to_bytes, to_int, to_key
from ._wire.view import fast_constructor
from .errors import InvalidArgumentError, LeaseProvidedError, ValueProvidedError, _rejected
from .types import SortOrder, SortTarget

__all__ = [
    "Compare",
    "CompareOperand",
    "CompareResult",
    "CompareTarget",
    "HasLeaseId",
    "Op",
    "OpKind",
]


class HasLeaseId(Protocol):
    """Anything with an integer lease ``id`` (e.g. :class:`aetcd.Lease`)."""

    @property
    def id(self) -> int: ...


LeaseLike = int | HasLeaseId


def _lease_id(value: object, name: str = "lease") -> int:
    """A lease argument as its id: a plain ``int`` or an object with an int ``.id``."""
    if type(value) is int:
        lid = value
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a Lease or an int lease id, not bool")
    else:
        lid_obj = getattr(value, "id", None)
        if type(lid_obj) is not int:
            raise TypeError(
                f"{name} must be a Lease or an int lease id, not {type(value).__name__}"
            )
        lid = lid_obj
    if lid < 0 or lid > INT64_MAX:
        raise InvalidArgumentError(f"{name} id must be between 0 and 2**63-1, got {lid}")
    return lid


def _flag(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise TypeError(f"{name} must be bool, not {type(value).__name__}")
    return value


def _key_range(
    key: object,
    prefix: bool,
    range_end: object,
    from_key: bool,
) -> tuple[bytes, bytes]:
    """Normalise a key plus its range options into (key, range_end) bytes.

    An empty key is only allowed with ``prefix=True`` or ``from_key=True``, where
    it means "every key" (etcd's ``key=range_end=b"\\0"``).
    """
    if prefix is False and range_end is None and from_key is False:
        return to_key(key), b""  # the common case: one key
    if prefix is not False:
        _flag(prefix, "prefix")
    if from_key is not False:
        _flag(from_key, "from_key")
    if range_end is None:
        if prefix:
            if from_key:
                raise InvalidArgumentError("prefix and from_key are mutually exclusive")
            k = to_bytes(key, "key")
            if not k:
                return FROM_KEY, FROM_KEY
            return k, prefix_range_end(k)
        if from_key:
            k = to_bytes(key, "key")
            return (k or FROM_KEY), FROM_KEY
        return to_key(key), b""
    if prefix or from_key:
        raise InvalidArgumentError("range_end cannot be combined with prefix or from_key")
    return to_key(key), to_bytes(range_end, "range_end")


class OpKind(enum.Enum):
    """Which request an :class:`Op` carries."""

    GET = "get"
    PUT = "put"
    DELETE = "delete"
    TXN = "txn"


_SORT_ORDERS: Final = frozenset(int(x) for x in SortOrder)
_SORT_TARGETS: Final = frozenset(int(x) for x in SortTarget)


#: The RequestOp field of each kind of op.
_ONEOF: Final = {
    OpKind.GET: "request_range",
    OpKind.PUT: "request_put",
    OpKind.DELETE: "request_delete_range",
    OpKind.TXN: "request_txn",
}
# Enum members as module constants: a class attribute read of an Enum costs
# ~70 ns on Python 3.11 (a global read: ~5 ns), and the hot paths use several.
_GET: Final = OpKind.GET
_PUT: Final = OpKind.PUT
_DELETE: Final = OpKind.DELETE
_TXN: Final = OpKind.TXN


@dataclass(frozen=True, slots=True, eq=False)
class Op:
    """One request: build it with :meth:`get`, :meth:`put`, :meth:`delete` or :meth:`txn`.

    An ``Op`` is immutable and can be reused or shared between tasks.
    """

    kind: OpKind
    key: bytes
    # The request as protobuf constructor arguments, ``{field: value}`` (only
    # fields that differ from their defaults; a txn's branches hold the
    # ``_item`` of their ops): a txn is built in one protobuf call from these,
    # with no intermediate message to copy. Private to aetcd; never mutated.
    _fields: dict[str, Any] = dataclasses.field(repr=False)
    _item: dict[str, Any] = dataclasses.field(repr=False)  # {RequestOp field: _fields}
    _writes: bool = dataclasses.field(repr=False)  # whether running it may change the store
    # Most ops on one path down the nested txns (each level counting its
    # largest list): etcd's --max-txn-ops applies to that sum. 0 for non-txns.
    _levels: int = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        if self.kind is _TXN:
            return "Op.txn(...)"
        return f"Op.{self.kind.value}({self.key!r})"

    @staticmethod
    def get(
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
    ) -> Op:
        """A range read; see :meth:`aetcd.Client.get` for the options."""
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
        return _new_op(_GET, fields["key"], fields, {"request_range": fields}, False, 0)

    @staticmethod
    def put(
        key: str | bytes,
        value: str | bytes = b"",
        *,
        lease: LeaseLike | None = None,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> Op:
        """A write of *value* under *key*; see :meth:`aetcd.Client.put`."""
        fields = _put_fields(key, value, lease, prev_kv, ignore_value, ignore_lease)
        return _new_op(_PUT, fields["key"], fields, {"request_put": fields}, True, 0)

    @staticmethod
    def delete(
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        prev_kv: bool = False,
    ) -> Op:
        """A delete of one key or a range; see :meth:`aetcd.Client.delete`."""
        fields = _delete_fields(key, prefix, range_end, from_key, prev_kv)
        item = {"request_delete_range": fields}
        return _new_op(_DELETE, fields["key"], fields, item, True, 0)

    @staticmethod
    def txn(
        compare: Iterable[Compare] = (),
        success: Iterable[Op] = (),
        failure: Iterable[Op] = (),
    ) -> Op:
        """A transaction: if every compare holds run *success*, else *failure*.

        It may be nested inside another txn's branches.
        """
        fields, writes, levels = _txn_fields(compare, success, failure)
        return _new_op(_TXN, b"", fields, {"request_txn": fields}, writes, levels)

    @property
    def is_write(self) -> bool:
        """Whether running this op may change the store."""
        return self._writes


_new_op = fast_constructor(Op)


# -- request builders: validation and normalisation, done once per request ------------
#
# Each returns the request as protobuf constructor arguments (fields at their
# defaults left out): ``RangeRequest(**fields)`` sends it on its own, and a txn
# embeds the dicts, so the whole TxnRequest is built in one protobuf call.


def _range_fields(
    key: object,
    prefix: bool = False,
    range_end: object = None,
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
) -> dict[str, Any]:
    """A validated RangeRequest (see :meth:`aetcd.Client.get`); raises before any I/O."""
    k, end = _key_range(key, prefix, range_end, from_key)
    f: dict[str, Any] = {"key": k, "range_end": end} if end else {"key": k}
    # Options at their defaults cost one comparison each (type checks included:
    # ``False != 0`` is False, so a bool is caught by the type test).
    if limit != 0 or type(limit) is not int:
        f["limit"] = to_int(limit, "limit")
    if revision != 0 or type(revision) is not int:
        f["revision"] = to_int(revision, "revision")
    if sort_order is not None:
        f["sort_order"] = _enum(sort_order, _SORT_ORDERS, "sort_order")
    if sort_target is not None:
        f["sort_target"] = _enum(sort_target, _SORT_TARGETS, "sort_target")
        if sort_order is None:
            f["sort_order"] = int(SortOrder.ASCEND)
    if serializable is not False:
        f["serializable"] = _flag(serializable, "serializable")
    if keys_only is not False:
        f["keys_only"] = _flag(keys_only, "keys_only")
    if count_only is not False:
        f["count_only"] = _flag(count_only, "count_only")
    if min_mod_revision != 0 or type(min_mod_revision) is not int:
        f["min_mod_revision"] = to_int(min_mod_revision, "min_mod_revision")
    if max_mod_revision != 0 or type(max_mod_revision) is not int:
        f["max_mod_revision"] = to_int(max_mod_revision, "max_mod_revision")
    if min_create_revision != 0 or type(min_create_revision) is not int:
        f["min_create_revision"] = to_int(min_create_revision, "min_create_revision")
    if max_create_revision != 0 or type(max_create_revision) is not int:
        f["max_create_revision"] = to_int(max_create_revision, "max_create_revision")
    return f


def _put_fields(
    key: object,
    value: object,
    lease: LeaseLike | None = None,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
) -> dict[str, Any]:
    """A validated PutRequest (see :meth:`aetcd.Client.put`); raises before any I/O."""
    k = to_key(key)
    v = value if type(value) is bytes else to_bytes(value, "value")
    f: dict[str, Any] = {"key": k, "value": v}
    if lease is not None:
        f["lease"] = _lease_id(lease)
    if prev_kv is not False:
        f["prev_kv"] = _flag(prev_kv, "prev_kv")
    if ignore_value is not False:
        if _flag(ignore_value, "ignore_value") and v:
            raise _rejected(
                ValueProvidedError,
                "etcdserver: value is provided",
                "a value cannot be given with ignore_value=True",
            )
        f["ignore_value"] = ignore_value
    if ignore_lease is not False:
        if _flag(ignore_lease, "ignore_lease") and lease is not None:
            raise _rejected(
                LeaseProvidedError,
                "etcdserver: lease is provided",
                "a lease cannot be given with ignore_lease=True",
            )
        f["ignore_lease"] = ignore_lease
    return f


def _delete_fields(
    key: object,
    prefix: bool = False,
    range_end: object = None,
    from_key: bool = False,
    prev_kv: bool = False,
) -> dict[str, Any]:
    """A validated DeleteRangeRequest (see :meth:`aetcd.Client.delete`)."""
    k, end = _key_range(key, prefix, range_end, from_key)
    f: dict[str, Any] = {"key": k, "range_end": end} if end else {"key": k}
    if prev_kv is not False:
        f["prev_kv"] = _flag(prev_kv, "prev_kv")
    return f


def _txn_fields(
    compare: Iterable[Compare], success: Iterable[Op], failure: Iterable[Op]
) -> tuple[dict[str, Any], bool, int]:
    """A validated TxnRequest: its fields, whether it may write, and its levels.

    One pass over the arguments checks their types and gathers what sending
    needs (``Op._writes``, ``Op._levels``), so nothing walks the built message.
    """
    fields: dict[str, Any] = {}
    cmps = compare if type(compare) is list else _listed(compare, Compare, "compare")
    if cmps:
        items = []
        for c in cmps:
            if type(c) is not Compare and not isinstance(c, Compare):
                raise TypeError(f"compare must hold Compare values, not {type(c).__name__}")
            items.append(c._fields())
        fields["compare"] = items
    writes = False
    nested = 0
    ok = success if type(success) is list else _listed(success, Op, "success")
    ko = failure if type(failure) is list else _listed(failure, Op, "failure")
    for name, ops in (("success", ok), ("failure", ko)):
        if not ops:
            continue
        items = []
        for op in ops:
            if type(op) is not Op and not isinstance(op, Op):
                raise TypeError(f"{name} must hold Op values, not {type(op).__name__}")
            if op._writes:
                writes = True
            if op._levels > nested:
                nested = op._levels
            items.append(op._item)
        fields[name] = items
    return fields, writes, max(len(cmps), len(ok), len(ko)) + nested


def _listed(values: Iterable[Any], cls: type, name: str) -> Sequence[Any]:
    if type(values) is list or type(values) is tuple:
        return values
    if isinstance(values, (str, bytes, cls)):
        raise TypeError(f"{name} must be a list of {cls.__name__}, not a single value")
    return list(values)


def _enum(value: object, allowed: frozenset[int], name: str) -> Any:
    """Check an enum option; returns it as the protobuf enum value (a plain int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an enum member, not {type(value).__name__}")
    if int(value) not in allowed:
        raise InvalidArgumentError(f"{name} {value!r} is not a valid choice")
    return int(value)


# -- compares ------------------------------------------------------------------


class CompareTarget(enum.IntEnum):
    """What a :class:`Compare` looks at (etcd ``Compare.CompareTarget``)."""

    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareResult(enum.IntEnum):
    """The relation a :class:`Compare` checks (etcd ``Compare.CompareResult``)."""

    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


_TARGET_FIELD: Final = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}
_VERSION: Final = CompareTarget.VERSION
_CREATE: Final = CompareTarget.CREATE
_MOD: Final = CompareTarget.MOD
_VALUE: Final = CompareTarget.VALUE
_LEASE: Final = CompareTarget.LEASE
_EQUAL: Final = CompareResult.EQUAL
_GREATER: Final = CompareResult.GREATER
_LESS: Final = CompareResult.LESS
_NOT_EQUAL: Final = CompareResult.NOT_EQUAL
#: Per target: the Compare field of its operand, and the target as a plain int
#: (protobuf takes a plain int faster than an IntEnum).
_TARGET_WIRE: Final = {t: (_TARGET_FIELD[t], int(t)) for t in CompareTarget}
_RESULT_WIRE: Final = {r: int(r) for r in CompareResult}


@dataclass(frozen=True, slots=True)
class Compare:
    """One condition of a txn, e.g. ``Compare.version("k") == 0``.

    Build it with :meth:`value`, :meth:`version`, :meth:`create_revision`,
    :meth:`mod_revision` or :meth:`lease`, then one of ``==``, ``!=``, ``<``,
    ``>``. With ``prefix=True`` or ``range_end=`` the condition must hold for
    every key of the range.
    """

    target: CompareTarget
    result: CompareResult
    key: bytes
    operand: bytes | int
    range_end: bytes = b""

    @staticmethod
    def value(
        key: str | bytes, *, prefix: bool = False, range_end: str | bytes | None = None
    ) -> CompareOperand:
        """Compare the value of *key* (with ``bytes`` or ``str``)."""
        return CompareOperand(_VALUE, key, prefix, range_end)

    @staticmethod
    def version(
        key: str | bytes, *, prefix: bool = False, range_end: str | bytes | None = None
    ) -> CompareOperand:
        """Compare the version of *key* (0 when it does not exist)."""
        return CompareOperand(_VERSION, key, prefix, range_end)

    @staticmethod
    def create_revision(
        key: str | bytes, *, prefix: bool = False, range_end: str | bytes | None = None
    ) -> CompareOperand:
        """Compare the create revision of *key* (0 when it does not exist)."""
        return CompareOperand(_CREATE, key, prefix, range_end)

    @staticmethod
    def mod_revision(
        key: str | bytes, *, prefix: bool = False, range_end: str | bytes | None = None
    ) -> CompareOperand:
        """Compare the last modification revision of *key*."""
        return CompareOperand(_MOD, key, prefix, range_end)

    @staticmethod
    def lease(
        key: str | bytes, *, prefix: bool = False, range_end: str | bytes | None = None
    ) -> CompareOperand:
        """Compare the lease id attached to *key* (0: none)."""
        return CompareOperand(_LEASE, key, prefix, range_end)

    def _fields(self) -> dict[str, Any]:
        """This compare as protobuf constructor arguments."""
        field, target = _TARGET_WIRE[self.target]
        f = {
            "key": self.key,
            "target": target,
            "result": _RESULT_WIRE[self.result],
            field: self.operand,
        }
        if self.range_end:
            f["range_end"] = self.range_end
        return f


_new_compare = fast_constructor(Compare)


class CompareOperand:
    """The left side of a compare; ``==``, ``!=``, ``<`` and ``>`` give a :class:`Compare`."""

    __slots__ = ("_end", "_key", "_target")
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        target: CompareTarget,
        key: object,
        prefix: bool,
        range_end: object,
    ) -> None:
        self._target = target
        if prefix is False and range_end is None:  # the common case: one key
            self._key = to_key(key)
            self._end = b""
        else:
            self._key, self._end = _key_range(key, prefix, range_end, False)

    def _make(self, result: CompareResult, other: object) -> Compare:
        if self._target is _VALUE:
            operand: bytes | int = to_bytes(other, "compare value")
        elif self._target is _LEASE:
            operand = _lease_id(other, "compare lease")
        else:
            operand = to_int(other, f"compare {_TARGET_FIELD[self._target]}")
        return _new_compare(self._target, result, self._key, operand, self._end)

    def __eq__(self, other: object) -> Compare:  # type: ignore[override]
        return self._make(_EQUAL, other)

    def __ne__(self, other: object) -> Compare:  # type: ignore[override]
        return self._make(_NOT_EQUAL, other)

    def __lt__(self, other: object) -> Compare:
        return self._make(_LESS, other)

    def __gt__(self, other: object) -> Compare:
        return self._make(_GREATER, other)

    def __repr__(self) -> str:
        return f"Compare.{_TARGET_FIELD[self._target]}({self._key!r})"
