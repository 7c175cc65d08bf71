"""python-etcd3's watch events: :class:`PutEvent` and :class:`DeleteEvent`."""

from __future__ import annotations

from typing import Any

import aetcd


class Event:
    """A watch event: ``key``, ``value``, the key-value's revisions, ``lease``, and
    ``prev_<field>`` for the previous key-value when the watch asked for it."""

    def __init__(self, event: aetcd.Event) -> None:
        self._event = event
        self.key = event.kv.key

    def __getattr__(self, name: str) -> Any:
        if name.startswith("prev_"):
            return getattr(self._event.prev_kv, name[5:])
        return getattr(self._event.kv, name)

    def __str__(self) -> str:
        return f"{self.__class__} key={self.key!r} value={self.value!r}"


class PutEvent(Event):
    """A key was written."""


class DeleteEvent(Event):
    """A key was deleted."""


def new_event(event: aetcd.Event) -> Event:
    """The python-etcd3 event for an :class:`aetcd.Event`."""
    return PutEvent(event) if event.type is aetcd.EventType.PUT else DeleteEvent(event)
