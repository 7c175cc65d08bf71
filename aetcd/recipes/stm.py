"""Software transactional memory over etcd, with Go ``concurrency.NewSTM``'s semantics.

:func:`stm` runs an async function against an :class:`STM` view of the store:
reads go to etcd (and are remembered in a *read set*), writes are buffered in
a *write set*, and at the end everything is committed in **one** txn guarded by
compares that detect interference. If another client got in the way, the
whole function is run again on fresh data::

    async def transfer(tx: STM) -> None:
        a = int(await tx.get("acct/a"))
        b = int(await tx.get("acct/b"))
        tx.put("acct/a", str(a - 10))
        tx.put("acct/b", str(b + 10))

    await stm(client, transfer)

The function may run several times, so it must not have side effects outside
the :class:`STM` object (or they must be safe to repeat).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from .._keys import to_bytes, to_int, to_key
from ..errors import CompactedError, STMConflictError
from ..ops import Compare, LeaseLike, Op
from ..types import GetResult

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = ["DEFAULT_STM_RETRIES", "STM", "Isolation", "STMConflictError", "stm"]

T = TypeVar("T")

#: How many times :func:`stm` re-runs a function whose commit met a conflict.
DEFAULT_STM_RETRIES: Final = 100


class Isolation(enum.Enum):
    """How much an :func:`stm` transaction is protected from concurrent writers.

    From strongest to weakest (Go ``concurrency.Isolation``):

    ``SERIALIZABLE_SNAPSHOT`` (default)
        Every read sees the store as of the first read's revision; the commit
        fails if any key read *or written* changed since that revision. No lost
        updates, no write skew on the keys touched.
    ``SERIALIZABLE``
        Reads as above (one consistent snapshot); the commit fails if any key
        read changed. A blind write (a key written but never read) does not
        conflict.
    ``REPEATABLE_READS``
        Each key is read at the latest revision the first time it is read, then
        served from the read set; the commit fails if any key read changed.
        Reads of different keys may come from different revisions, but a
        committed transaction saw values that were still current at commit.
    ``READ_COMMITTED``
        Reads of committed data, no checks: the commit always succeeds (never
        retries) and can overwrite concurrent updates (lost updates).
    """

    SERIALIZABLE_SNAPSHOT = "serializable_snapshot"
    SERIALIZABLE = "serializable"
    REPEATABLE_READS = "repeatable_reads"
    READ_COMMITTED = "read_committed"


@dataclass(frozen=True, slots=True)
class _Write:
    value: bytes  # what a later get() in the same attempt sees (b"" after a delete)
    op: Op


class STM:
    """One attempt of an :func:`stm` transaction: the view handed to the function.

    :meth:`get` and :meth:`rev` read (through the read set), :meth:`put` and
    :meth:`delete` buffer writes until the commit. The object is only valid
    during the call it was given to; using it later raises ``RuntimeError``.
    ``attempt`` counts the runs of the function, from 1.
    """

    def __init__(self, client: RecipeClient, isolation: Isolation, attempt: int) -> None:
        self.client = client
        self.isolation = isolation
        self.attempt = attempt
        self._rset: dict[bytes, GetResult] = {}
        self._wset: dict[bytes, _Write] = {}
        # The snapshot revision of the (SERIALIZABLE_)SNAPSHOT levels; 0 until the first read.
        self._pin = 0
        # Reads taken from a failed commit's Else branch, served to the next attempt.
        self._prefetched: dict[bytes, GetResult] = {}
        self._prefetch_revision = 0
        self._stale = False  # the snapshot revision was compacted: run again afresh
        self._done = False

    def __repr__(self) -> str:
        return (
            f"<aetcd.recipes.STM {self.isolation.name} attempt={self.attempt} "
            f"reads={len(self._rset)} writes={len(self._wset)}>"
        )

    @property
    def _snapshot(self) -> bool:
        return self.isolation in (Isolation.SERIALIZABLE_SNAPSHOT, Isolation.SERIALIZABLE)

    async def get(self, key: str | bytes) -> bytes:
        """The value of *key*: this transaction's own buffered write if any, else
        the stored one (``b""`` when the key does not exist, like Go).

        Adds *key* to the read set (the commit then checks it did not change).
        """
        k = to_key(key)
        self._check()
        write = self._wset.get(k)
        if write is not None:
            return write.value
        res = await self._fetch(k)
        return res.kvs[0].value if res.kvs else b""

    async def rev(self, key: str | bytes) -> int:
        """The mod revision of *key* as read by this transaction (0: missing).

        Buffered writes do not change it; the key joins the read set.
        """
        k = to_key(key)
        self._check()
        res = await self._fetch(k)
        return res.kvs[0].mod_revision if res.kvs else 0

    def put(self, key: str | bytes, value: str | bytes, *, lease: LeaseLike | None = None) -> None:
        """Buffer a write of *value* to *key* (with *lease*), applied at commit."""
        k = to_key(key)
        v = to_bytes(value, "value")
        self._check()
        self._wset[k] = _Write(v, Op.put(k, v, lease=lease))

    def delete(self, key: str | bytes) -> None:
        """Buffer a delete of *key*, applied at commit; later gets here see ``b""``."""
        k = to_key(key)
        self._check()
        self._wset[k] = _Write(b"", Op.delete(k))

    # -- internals -----------------------------------------------------------------------

    def _check(self) -> None:
        if self._done:
            raise RuntimeError("this STM attempt is over: use the object only inside the function")

    async def _fetch(self, key: bytes) -> GetResult:
        cached = self._rset.get(key)
        if cached is not None:
            return cached
        if self._snapshot:
            if not self._pin and self._prefetched:
                self._pin = self._prefetch_revision
            pre = self._prefetched.pop(key, None)
            if pre is not None:
                self._rset[key] = pre
                return pre
        try:
            res = await self.client.get(key, revision=self._pin)
        except CompactedError:
            if self._pin:
                self._stale = True  # our snapshot is gone: the attempt must start over
            raise
        self._rset[key] = res
        if self._snapshot and not self._pin:
            self._pin = res.header.revision  # the first read fixes the snapshot
        return res

    async def _prefetch(self, keys: list[bytes]) -> None:
        """Read *keys* in one round trip (Go ``WithPrefetch``)."""
        if self._snapshot and not self._pin and self._prefetched:
            self._pin = self._prefetch_revision
        if self._snapshot:
            for k in keys:
                pre = self._prefetched.pop(k, None)
                if pre is not None:
                    self._rset.setdefault(k, pre)
        missing = [k for k in dict.fromkeys(keys) if k not in self._rset]
        if not missing:
            return
        try:
            res = await self.client.txn(success=[Op.get(k, revision=self._pin) for k in missing])
        except CompactedError:
            if self._pin:
                self._stale = True
            raise
        for k, got in zip(missing, res.responses, strict=True):
            assert isinstance(got, GetResult)
            self._rset[k] = got
        if self._snapshot and not self._pin:
            self._pin = res.header.revision

    def _compares(self) -> list[Compare]:
        if self.isolation is Isolation.READ_COMMITTED:
            return []
        cmps = [
            Compare.mod_revision(k) == (res.kvs[0].mod_revision if res.kvs else 0)
            for k, res in self._rset.items()
        ]
        if self.isolation is Isolation.SERIALIZABLE_SNAPSHOT and self._pin:
            # Nothing we write may have changed after our snapshot either.
            cmps += [Compare.mod_revision(k) < self._pin + 1 for k in self._wset]
        return cmps

    async def _commit(self) -> bool:
        """Apply the write set if nothing conflicts; on conflict keep the Else reads."""
        cmps = self._compares()
        ops = [w.op for w in self._wset.values()]
        if not cmps and not ops:
            return True
        keys = list(self._rset) if self._snapshot else []
        res = await self.client.txn(cmps, ops, [Op.get(k) for k in keys])
        if res.succeeded:
            return True
        # The Else branch read the read set at the conflicting revision: the next
        # attempt starts from these without a round trip each (as Go does).
        self._prefetched = {}
        for k, got in zip(keys, res.responses, strict=True):
            assert isinstance(got, GetResult)
            self._prefetched[k] = got
        self._prefetch_revision = res.header.revision
        return False

    def _next(self) -> STM:
        """The object for the next attempt, carrying over the conflict's reads."""
        nxt = STM(self.client, self.isolation, self.attempt + 1)
        if not self._stale:
            nxt._prefetched = self._prefetched
            nxt._prefetch_revision = self._prefetch_revision
        return nxt


async def stm(
    client: RecipeClient,
    fn: Callable[[STM], Awaitable[T]],
    *,
    isolation: Isolation = Isolation.SERIALIZABLE_SNAPSHOT,
    prefetch: Iterable[str | bytes] = (),
    max_retries: int = DEFAULT_STM_RETRIES,
) -> T:
    """Run ``await fn(tx)`` as one transaction and return its result once committed.

    Writes made through ``tx`` are applied atomically in one txn at the end,
    only if the checks of *isolation* pass; otherwise *fn* runs again with a new
    ``tx`` (up to *max_retries* more times, then :class:`STMConflictError`).
    *prefetch* names keys to read in one round trip before each run.

    Failure modes:

    * An exception from *fn* aborts: nothing is written, the exception propagates.
    * The commit is one txn, so the read set (as compares, plus the write set
      under ``SERIALIZABLE_SNAPSHOT``) and the write set must each fit the
      client's ``max_txn_ops`` (etcd's ``--max-txn-ops``, 128 by default);
      larger transactions fail with :class:`aetcd.TooManyOpsError` (not retried).
    * A commit that fails in transit raises :class:`aetcd.OutcomeUnknownError`
      and is not retried: it may have been applied.
    * If the snapshot revision is compacted mid-run, the run starts over.

    Cancellation: nothing is written before the commit, so cancelling *fn*
    leaves the store untouched; cancelling during the commit leaves it unknown
    whether the commit was applied (as for any write).
    """
    if not callable(fn):
        raise TypeError(f"fn must be an async function taking an STM, not {type(fn).__name__}")
    if not isinstance(isolation, Isolation):
        raise TypeError(f"isolation must be an aetcd.recipes.Isolation, not {isolation!r}")
    retries = to_int(max_retries, "max_retries")
    if isinstance(prefetch, str | bytes):
        raise TypeError("prefetch must be a list of keys, not a single key")
    keys = [to_key(k, "prefetch key") for k in prefetch]
    tx = STM(client, isolation, 1)
    while True:
        try:
            if keys:
                await tx._prefetch(keys)
            result = await fn(tx)
            committed = not tx._stale and await tx._commit()
        except CompactedError:
            if not tx._stale:
                raise
            committed = False
        finally:
            tx._done = True
        if committed:
            return result
        if tx.attempt > retries:
            raise STMConflictError(
                f"stm transaction conflicted {tx.attempt} times in a row "
                f"(isolation {isolation.name}); nothing was written",
                attempts=tx.attempt,
            )
        tx = tx._next()
