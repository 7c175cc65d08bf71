"""Event views of watch events, without a server."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from aetcd._pb import kv_pb2
from aetcd._wire.decode import event_view
from aetcd.types import Event, EventType, KeyValue

# -- Event --------------------------------------------------------------------------


def _pb_event(prev: bool) -> kv_pb2.Event:
    kv = kv_pb2.KeyValue(key=b"k", value=b"v", create_revision=2, mod_revision=5, version=3)
    pb = kv_pb2.Event(type=kv_pb2.Event.DELETE, kv=kv)
    if prev:
        pb.prev_kv.CopyFrom(kv_pb2.KeyValue(key=b"k", value=b"old", create_revision=2))
    return pb


def _hand_built(prev: bool) -> Event:
    return Event(
        EventType.DELETE,
        KeyValue(b"k", b"v", 2, 5, 3, 0),
        KeyValue(b"k", b"old", 2, 0, 0, 0) if prev else None,
    )


@pytest.mark.parametrize("prev", [False, True])
def test_event_view_equals_a_hand_built_event(prev: bool) -> None:
    view = event_view(_pb_event(prev))
    built = _hand_built(prev)
    assert view == built and hash(view) == hash(built) and repr(view) == repr(built)
    assert view.type is EventType.DELETE
    assert dataclasses.astuple(view) == dataclasses.astuple(built)
    assert dataclasses.replace(view, type=EventType.PUT).type is EventType.PUT
    match view:
        case Event(EventType.DELETE, KeyValue(key=b"k")):
            pass
        case _:
            pytest.fail("an Event view must match like a dataclass")


@pytest.mark.parametrize("prev", [False, True])
def test_event_copies_and_pickles_hold_their_own_fields(prev: bool) -> None:
    view = event_view(_pb_event(prev))
    for other in (copy.copy(view), pickle.loads(pickle.dumps(view))):
        assert other == view
        assert not isinstance(other._pb, kv_pb2.Event)
        assert not isinstance(other.kv._pb, kv_pb2.KeyValue)
        if prev:
            assert other.prev_kv is not None
            assert not isinstance(other.prev_kv._pb, kv_pb2.KeyValue)


def test_event_is_frozen() -> None:
    view = event_view(_pb_event(False))
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.kv = KeyValue(b"x", b"", 0, 0, 0, 0)  # type: ignore[misc]
