"""The view engine: frozen dataclasses whose fields are read from a message on access.

A view's ``_pb`` slot holds the protobuf message it was built from, or for a
value built by hand (or copied) a namedtuple with the same field names. A field
is a class-level ``property(attrgetter("_pb.<name>"))``: no Python frame per
read. Decoding every field up front cost more than the RPC itself for large
ranges (a 1,000-key range read key by key: ~4.6x the cost of reading the bare
message, ~2.3x with views; bench/micro/decode.py).

Views are built without ``__init__``: ``new(cls)`` and the C-level slot
setters below (a frozen dataclass's ``__setattr__`` refuses). This module is a
leaf (it imports nothing of aetcd) and knows no message class.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

if TYPE_CHECKING:
    from ..types import ResponseHeader

_T = TypeVar("_T")

new = object.__new__
#: Runs an iterator to its end in C (the slot setters return None).
drain: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
#: Slot value of a part of a view not decoded yet.
LAZY: Final[Any] = object()


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
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


class _View:
    """Base of the results that read their fields from a protobuf message (``_pb``)."""

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

    __slots__ = ("_h",)  # the ResponseHeader, or LAZY
    if TYPE_CHECKING:
        _h: Any


# C-level setters of the slots (they bypass the frozen __setattr__).
set_pb: Callable[[_View, Any], None] = _View.__dict__["_pb"].__set__
set_h: Callable[[_Result, Any], None] = _Result.__dict__["_h"].__set__


def setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The C-level setter of the slot *name* of *cls*."""
    set_slot: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return set_slot


def view(header: type[ResponseHeader] | None = None) -> Callable[[type[_T]], type[_T]]:
    """A class decorator: the fields of a dataclass that are not slots become reads of ``_pb``.

    With *header* (the view class of a response header), a ``header`` field is
    a view of ``_pb.header`` built on first read (most callers never read it);
    any other field is ``property(attrgetter("_pb.<name>"))``.
    """

    def lazy_header(self: _Result) -> ResponseHeader:
        h: ResponseHeader = self._h
        if h is LAZY:
            h = new(header)  # type: ignore[arg-type]
            set_pb(h, self._pb.header)
            set_h(self, h)
        return h

    def apply(cls: type[_T]) -> type[_T]:
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in cls.__dict__:
                continue  # a slot, filled when the view is built
            if f.name == "header" and header is not None:
                doc = "The header of the response (:class:`ResponseHeader`)."
                prop = property(lazy_header, doc=doc)
            else:
                getter = attrgetter(f"_pb.{f.name}")
                prop = property(getter, doc=f"The ``{f.name}`` (``{f.type}``).")
            setattr(cls, f.name, prop)
        return cls

    return apply


_V = TypeVar("_V", bound=_View)


def evolve(obj: _V, **slots: Any) -> _V:
    """A copy of the view *obj* with some slots replaced (namespaces strip their keys so)."""
    copy = new(type(obj))
    for klass in type(obj).__mro__:
        for name in klass.__dict__.get("__slots__", ()):
            value = slots[name] if name in slots else getattr(obj, name)
            klass.__dict__[name].__set__(copy, value)
    return copy
