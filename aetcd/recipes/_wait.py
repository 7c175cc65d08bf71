"""Waiting for keys to go away, by watch (Go ``concurrency/key.go``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import CompactedError
from ..types import EventType, SortOrder, SortTarget

if TYPE_CHECKING:
    from ._client import RecipeClient


class WaitTimeout(TimeoutError):
    """A recipe's wait bound expired (as opposed to a call's own deadline)."""


async def wait_delete(client: RecipeClient, key: bytes, revision: int) -> None:
    """Return once *key* is deleted at or after *revision*."""
    async with client.watch(key, start_revision=revision) as watch:
        async for event in watch:
            if event.type is EventType.DELETE:
                return


async def wait_deletes(
    client: RecipeClient, prefix: bytes, max_create_revision: int, timeout: float | None = None
) -> None:
    """Return once no key under *prefix* created at or before *max_create_revision* is left.

    Waits for the newest such key only, then looks again: a queue waits for its
    predecessor, never for everyone (no thundering herd), and never by polling.
    *timeout* bounds only the waiting (from the first look that finds a key),
    never a look itself: with 0 it returns if nothing is left and raises
    :class:`WaitTimeout` at once otherwise.
    """
    if max_create_revision <= 0:
        return  # 0 would mean "no bound" to the server
    deadline: float | None = None
    while True:
        res = await client.get(
            prefix,
            prefix=True,
            sort_target=SortTarget.CREATE,
            sort_order=SortOrder.DESCEND,
            limit=1,
            max_create_revision=max_create_revision,
            keys_only=True,
        )
        if not res.kvs:
            return
        if deadline is None and timeout is not None:
            deadline = asyncio.get_running_loop().time() + timeout
        try:
            # The read saw the key alive at header.revision, so its delete comes
            # later: watching from the next revision keeps the watch "synced" on
            # the server, which delivers at once (a watch from a past revision
            # is served by a catch-up loop that runs every 100 ms).
            async with asyncio.timeout_at(deadline) as waiting:
                await wait_delete(client, res.kvs[0].key, res.header.revision + 1)
        except CompactedError:
            continue  # history moved on meanwhile: look again
        except TimeoutError:
            if waiting.expired():
                raise WaitTimeout from None
            raise
