"""What Go's ``experimental/recipes`` share: the private session TTL, unique
keys ``<prefix>/<unix ns>``, create-if-absent, the lease guard of a waiter's
own key, and waiting for a PUT.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from ..errors import EtcdError
from ..ops import Compare, Op
from ..types import EventType, KeyValue, WatchFilter

if TYPE_CHECKING:
    from ._client import RecipeClient


#: Session TTL, in seconds, of a private session (when a recipe is given a client).
DEFAULT_CONTRIB_TTL: Final = 10


# -- shared helpers ------------------------------------------------------------------------


def _lease_guard(key: bytes | None, lease: int) -> Compare | None:
    """The guard for deleting our own *key*: it still carries our *lease*."""
    return Compare.lease(key) == lease if key is not None and lease else None


def _unique_key(prefix: bytes) -> bytes:
    """``<prefix>/<unix time in ns>``: Go's ``newUniqueKV`` key."""
    return prefix + b"/" + str(time.time_ns()).encode()


async def _create(client: RecipeClient, key: bytes, value: bytes, lease: int) -> int:
    """Create *key* unless it exists; its create revision, or 0 if it existed."""
    res = await client.txn(
        compare=[Compare.version(key) == 0],
        success=[Op.put(key, value, lease=lease)],
    )
    return res.header.revision if res.succeeded else 0


async def _wait_put(
    client: RecipeClient, key: bytes, revision: int, *, prefix: bool = False
) -> KeyValue:
    """The first PUT to *key* (or under it, with *prefix*) at or after *revision*."""
    async with client.watch(
        key, prefix=prefix, start_revision=revision, filters=[WatchFilter.NODELETE]
    ) as watch:
        async for event in watch:
            if event.type is EventType.PUT:
                return event.kv
    raise EtcdError(f"the watch on {key!r} ended")  # pragma: no cover - watches end by error
