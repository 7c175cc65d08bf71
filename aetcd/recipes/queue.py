"""Go's ``recipe.Queue`` and ``recipe.PriorityQueue``.

Key layouts: :class:`Queue` ``<name>``: ``<name>/<unix ns>`` items (no lease),
served in revision order. :class:`PriorityQueue` ``<name>``:
``<name>/<priority %05d>/<sequence %016d>`` items, served in key order, plus
the bookkeeping key ``__<name>/<priority %05d>``. A dequeue waits with a watch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from .._keys import to_bytes, to_int, to_key
from ..errors import CompactedError
from ..ops import Compare, Op
from ..types import KeyValue, SortOrder, SortTarget, TxnResult
from ._experimental import _create, _unique_key, _wait_put
from ._util import log, shielded, wait_timeout

if TYPE_CHECKING:
    from ._client import RecipeClient


# How many queue items one dequeue looks at per read: a consumer that loses the
# head to another one tries the next items instead of reading again.
_DEQUEUE_BATCH: Final = 8


# -- queues --------------------------------------------------------------------------------


class _Dequeuer:
    """Claiming the first item of a prefix, safely with many consumers."""

    client: RecipeClient
    prefix: bytes
    _order: SortTarget

    async def dequeue(self, *, timeout: float | None = None) -> bytes:
        """Remove and return the first item, waiting (by watch) while the queue is empty.

        Each item goes to exactly one consumer: it is claimed by deleting it
        only if it is unchanged. *timeout* (seconds) bounds only the time spent
        waiting for an item, not the reads and claims (each bounded by the
        client's timeout): ``dequeue(timeout=0)`` takes an item that is there
        and raises ``TimeoutError`` at once on an empty queue. If the caller is
        cancelled just as an item was claimed, the item is put back (at the
        end of the queue) rather than lost.
        """
        timeout = wait_timeout(timeout)
        deadline: float | None = None
        while True:
            res = await self.client.get(
                self.prefix,
                prefix=True,
                sort_target=self._order,
                sort_order=SortOrder.ASCEND,
                limit=_DEQUEUE_BATCH,
            )
            for kv in res.kvs:
                if await self._claim(kv):
                    return kv.value
            if res.kvs:
                continue  # other consumers took these: look again
            if deadline is None and timeout is not None:
                deadline = asyncio.get_running_loop().time() + timeout
            try:
                async with asyncio.timeout_at(deadline) as waiting:
                    kv = await _wait_put(
                        self.client, self.prefix, res.header.revision + 1, prefix=True
                    )
            except CompactedError:
                continue
            except TimeoutError:
                if waiting.expired():
                    raise TimeoutError(
                        f"queue {self.prefix!r} stayed empty for {timeout} s"
                    ) from None
                raise
            if await self._claim(kv):
                return kv.value

    async def _claim(self, kv: KeyValue) -> bool:
        claim = asyncio.ensure_future(
            self.client.txn(
                compare=[Compare.mod_revision(kv.key) == kv.mod_revision],
                success=[Op.delete(kv.key)],
            )
        )
        try:
            res = await asyncio.shield(claim)
        except asyncio.CancelledError:
            await shielded(self._unclaim(claim, kv), self.client.settings.timeout)
            raise
        return res.succeeded

    async def _unclaim(self, claim: asyncio.Future[TxnResult], kv: KeyValue) -> None:
        """Put back an item whose claim completed for a consumer that was cancelled."""
        try:
            res = await claim
        except Exception:
            return  # the claim failed (or its outcome is unknown): nothing to put back
        if res.succeeded:
            log.info("dequeue cancelled after claiming %r: putting it back", kv.key)
            await self.client.txn(
                compare=[Compare.version(kv.key) == 0],
                success=[Op.put(kv.key, kv.value)],
            )


class Queue(_Dequeuer):
    """A multi-producer, multi-consumer FIFO queue under *name* (Go ``recipe.Queue``).

    Items are ``<name>/<unix ns>`` keys without lease (they survive their
    producer) and are served in the order they were enqueued (revision order).
    """

    _order = SortTarget.MOD

    def __init__(self, client: RecipeClient, name: str | bytes) -> None:
        self.client = client
        self.name = to_key(name, "name")
        self.prefix = self.name + b"/"

    def __repr__(self) -> str:
        return f"<aetcd.recipes.Queue {self.name!r}>"

    async def enqueue(self, value: str | bytes) -> bytes:
        """Append *value*; returns its key.

        A failure in transit (:class:`aetcd.OutcomeUnknownError`) or a
        cancellation during the call leaves it unknown whether it was enqueued.
        """
        val = to_bytes(value, "value")
        while True:
            key = _unique_key(self.name)
            if await _create(self.client, key, val, 0):
                return key


class PriorityQueue(_Dequeuer):
    """A queue served by priority, then FIFO (Go ``recipe.PriorityQueue``).

    Lower numbers come out first (0..65535); items of equal priority come out
    in the order they were enqueued.
    """

    _order = SortTarget.KEY

    def __init__(self, client: RecipeClient, name: str | bytes) -> None:
        self.client = client
        self.name = to_key(name, "name")
        self.prefix = self.name + b"/"

    def __repr__(self) -> str:
        return f"<aetcd.recipes.PriorityQueue {self.name!r}>"

    async def enqueue(self, value: str | bytes, priority: int) -> bytes:
        """Add *value* with *priority*; returns its key ``<name>/<priority>/<sequence>``.

        Keys of one priority are numbered in sequence; a bookkeeping key
        ``__<name>/<priority>`` makes concurrent producers take turns.
        """
        val = to_bytes(value, "value")
        pr = to_int(priority, "priority", maximum=0xFFFF)
        band = self.prefix + b"%05d" % pr
        base = b"__" + band
        while True:
            res = await self.client.get(
                band + b"/",
                prefix=True,
                sort_target=SortTarget.KEY,
                sort_order=SortOrder.DESCEND,
                limit=1,
                keys_only=True,
            )
            seq = 0
            if res.kvs:
                last = res.kvs[0].key.rsplit(b"/", 1)[-1]
                if not last.isdigit():
                    raise ValueError(f"unexpected key {res.kvs[0].key!r} in priority queue")
                seq = int(last) + 1
            key = band + b"/%016d" % seq
            # Nobody may have enqueued at this priority since our read (Go newSequentialKV).
            txn = await self.client.txn(
                compare=[Compare.mod_revision(base) < res.header.revision + 1],
                success=[Op.put(base, b""), Op.put(key, val)],
            )
            if txn.succeeded:
                return key
