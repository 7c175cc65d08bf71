"""The recipes of Go's ``client/v3/experimental/recipes``: RWMutex, barriers and queues.

Same key layouts as the Go package, so Go and Python processes can share them:

* :class:`RWMutex` ``<name>``: ``<name>/read/<unix ns>`` and ``<name>/write/<unix ns>``,
  written with the holder's session lease.
* :class:`Barrier` ``<name>``: the single key ``<name>`` (no lease).
* :class:`DoubleBarrier` ``<name>``: ``<name>/waiters/<unix ns>`` (session lease) and
  ``<name>/ready`` (no lease).
* :class:`Queue` ``<name>``: ``<name>/<unix ns>`` items (no lease), served in
  revision order.
* :class:`PriorityQueue` ``<name>``: ``<name>/<priority %05d>/<sequence %016d>``
  items, served in key order, plus the bookkeeping key ``__<name>/<priority %05d>``.

Every wait is a watch (never polling), and the keys of a waiter that gives up
(timeout, cancellation, error) are removed again, shielded from cancellation.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self

from .._keys import to_bytes, to_int, to_key
from ..errors import (
    CompactedError,
    EtcdError,
    LeaseLostError,
    LockTimeoutError,
    TooManyClientsError,
)
from ..ops import Compare, LeaseLike, Op
from ..types import EventType, GetResult, KeyValue, SortOrder, SortTarget, TxnResult, WatchFilter
from ._util import first_of, log, shielded, wait_timeout
from ._wait import WaitTimeout, wait_delete, wait_deletes
from .session import Session, SessionOwner

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = [
    "DEFAULT_CONTRIB_TTL",
    "Barrier",
    "DoubleBarrier",
    "PriorityQueue",
    "Queue",
    "RWLock",
    "RWMutex",
    "TooManyClientsError",
]

#: Session TTL, in seconds, of a private session (when a recipe is given a client).
DEFAULT_CONTRIB_TTL: Final = 10

# How many queue items one dequeue looks at per read: a consumer that loses the
# head to another one tries the next items instead of reading again.
_DEQUEUE_BATCH: Final = 8


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


# -- RWMutex -------------------------------------------------------------------------------


class RWMutex:
    """A distributed readers-writer lock named *name* (Go ``recipe.RWMutex``).

    Readers share it, a writer holds it alone. Requests are served in arrival
    order (create revision): a reader waits only for older writers, a writer
    for every older holder or waiter, so a waiting writer also holds back
    readers that came after it (writers do not starve). Each waiter watches
    just the newest key it must outlive.

    ``RWMutex(client, name, ttl=10)`` gives each holder a private session (a
    lease of its own while it holds, kept idle for reuse after release);
    ``RWMutex(session, name)`` puts every
    holder's key on the shared session. Unlike :class:`~aetcd.recipes.Lock`,
    two holders on one session still exclude each other: each has its own key.
    One ``RWMutex`` object may hand out many holders, from any task::

        rw = RWMutex(client, "config")
        async with rw.read_lock(timeout=5): ...
        async with rw.write_lock(timeout=5): ...
    """

    def __init__(
        self,
        client_or_session: RecipeClient | Session,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_CONTRIB_TTL,
    ) -> None:
        self._target = client_or_session
        self.name = to_key(name, "name")
        self.prefix = self.name + b"/"
        self._ttl = ttl

    def __repr__(self) -> str:
        return f"<aetcd.recipes.RWMutex {self.name!r}>"

    def read_lock(self, *, timeout: float | None = None) -> RWLock:
        """A shared holder: ``async with rw.read_lock():`` (or ``acquire``/``release``)."""
        return RWLock(self, "read", SessionOwner(self._target, self._ttl), timeout)

    def write_lock(self, *, timeout: float | None = None) -> RWLock:
        """An exclusive holder: ``async with rw.write_lock():``."""
        return RWLock(self, "write", SessionOwner(self._target, self._ttl), timeout)


class RWLock:
    """One holder of an :class:`RWMutex`, in ``mode`` ``"read"`` or ``"write"``.

    Entering ``async with`` raises :class:`aetcd.LockTimeoutError` after the
    timeout rather than running the body unlocked.
    """

    def __init__(
        self,
        mutex: RWMutex,
        mode: Literal["read", "write"],
        owner: SessionOwner,
        timeout: float | None,
    ) -> None:
        self.mutex = mutex
        self.mode = mode
        self._owner = owner
        self._timeout = wait_timeout(timeout)
        self._key: bytes | None = None
        self._revision = 0
        self._lease = 0

    def __repr__(self) -> str:
        state = f"held key={self._key!r}" if self._key else "not held"
        return f"<aetcd.recipes.RWLock {self.mode} {self.mutex.name!r} {state}>"

    @property
    def key(self) -> bytes:
        """``<name>/<mode>/<unix ns>``: this holder's key (it must be held)."""
        if self._key is None:
            raise RuntimeError("the lock is not held")
        return self._key

    @property
    def revision(self) -> int:
        """The create revision of :attr:`key`: the fencing token (it must be held)."""
        if self._key is None:
            raise RuntimeError("the lock is not held")
        return self._revision

    @property
    def held(self) -> bool:
        """Whether this holder believes it holds the lock (False once its lease is lost)."""
        session = self._owner.session
        return self._key is not None and session is not None and session.alive

    def guard(self) -> Compare:
        """The compare that holds only while this holder holds the lock (for your txns)."""
        return Compare.create_revision(self.key) == self.revision

    async def lost(self) -> None:
        """Return once the holder's session lease is lost."""
        if self._owner.session is None:
            raise RuntimeError("the lock is not held")
        await self._owner.session.lost()

    async def acquire(self, timeout: float | None = None) -> None:
        """Wait until held (shared for ``"read"``, exclusive for ``"write"``).

        *timeout* (seconds) bounds only the waiting for other holders, not the
        round trips to etcd (each bounded by the client's timeout), so
        ``acquire(timeout=0)`` takes a free lock. When it expires, raises
        :class:`aetcd.LockTimeoutError`; if the session is lost while waiting
        :class:`aetcd.LeaseLostError`. Then, and on cancellation or any error,
        this waiter's key is removed again.
        """
        timeout = wait_timeout(timeout)
        if self._key is not None:
            raise RuntimeError("this holder already holds the lock")
        client = self._owner.client
        prefix = self.mutex.prefix
        key: bytes | None = None
        lease = 0
        try:
            session = await self._owner.open()
            lease = session.lease_id
            revision = 0
            while not revision:
                key = mine = _unique_key(prefix + self.mode.encode())
                revision = await _create(client, mine, b"", lease)
            # Readers wait for older writers only; writers for everyone older.
            blockers = prefix + b"write/" if self.mode == "read" else prefix
            try:
                finished, _ = await first_of(
                    wait_deletes(client, blockers, revision - 1, timeout), session.lost()
                )
            except WaitTimeout:
                raise LockTimeoutError(
                    f"{self.mode} lock on {self.mutex.name!r} not acquired within {timeout} s"
                ) from None
            if not finished:
                raise LeaseLostError(
                    f"the session of rwmutex {self.mutex.name!r} was lost while waiting"
                )
            res = await client.get(mine, keys_only=True)
            if not res.kvs or res.kvs[0].create_revision != revision:
                raise LeaseLostError(f"rwmutex key {mine!r} vanished while waiting")
        except BaseException:
            await self._owner.abandon(key, _lease_guard(key, lease))
            raise
        self._key, self._revision, self._lease = key, revision, lease

    async def release(self) -> None:
        """Release: delete this holder's key (shielded from cancellation). Safe when not held."""
        key, lease = self._key, self._lease
        self._key, self._revision, self._lease = None, 0, 0
        await self._owner.abandon(key, _lease_guard(key, lease))

    async def __aenter__(self) -> Self:
        await self.acquire(self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


# -- Barrier -------------------------------------------------------------------------------


class Barrier:
    """A barrier: while its key exists, :meth:`wait` blocks (Go ``recipe.Barrier``).

    A coordinator calls :meth:`hold`, workers ``await barrier.wait()``, and
    :meth:`release` (by anyone) lets them all through. ``async with barrier:``
    holds for the block and releases on the way out (also on cancellation).
    The key has no lease unless :meth:`hold` is given one, so a crashed
    coordinator leaves the barrier held.
    """

    def __init__(self, client: RecipeClient, name: str | bytes) -> None:
        self.client = client
        self.key = to_key(name, "name")

    def __repr__(self) -> str:
        return f"<aetcd.recipes.Barrier {self.key!r}>"

    async def hold(self, *, lease: LeaseLike | None = None) -> bool:
        """Raise the barrier; False if it was already held (then it is left as is)."""
        res = await self.client.txn(
            compare=[Compare.version(self.key) == 0],
            success=[Op.put(self.key, b"", lease=lease)],
        )
        return res.succeeded

    async def release(self) -> bool:
        """Lower the barrier, releasing every waiter; False if it was not held."""
        res = await self.client.delete(self.key)
        return res.deleted > 0

    async def wait(self, *, timeout: float | None = None) -> None:
        """Return once the barrier is not held (at once if it is not held now).

        *timeout* (seconds) bounds only the waiting, not the first read (bounded
        by the client's timeout): ``wait(timeout=0)`` passes a lowered barrier
        and raises ``TimeoutError`` at once on a held one. Cancelling leaves
        nothing behind.
        """
        timeout = wait_timeout(timeout)
        res = await self.client.get(self.key, keys_only=True)
        if not res.kvs:
            return
        try:
            async with asyncio.timeout(timeout) as deadline:
                while True:
                    try:
                        await wait_delete(self.client, self.key, res.header.revision + 1)
                        return
                    except CompactedError:
                        pass  # history moved on meanwhile: look again
                    res = await self.client.get(self.key, keys_only=True)
                    if not res.kvs:
                        return
        except TimeoutError:
            if deadline.expired():
                raise TimeoutError(f"barrier {self.key!r} still held after {timeout} s") from None
            raise

    async def __aenter__(self) -> Self:
        await self.hold()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await shielded(self.release(), self.client.settings.timeout)


# -- DoubleBarrier -------------------------------------------------------------------------


class DoubleBarrier:
    """*count* participants enter together and leave together (Go ``recipe.DoubleBarrier``).

    :meth:`enter` returns once *count* participants have entered; :meth:`leave`
    once all of them have left. ``async with DoubleBarrier(session, "b", 3):``
    does both around the block. A participant whose process dies is removed
    when its lease expires, so the others are not blocked for ever.

    With a client, each participant (each object) has a private session from
    :meth:`enter` to :meth:`leave`; with a session, its lease is used. One
    object is one participant.

    Failure modes: entering a barrier that already has *count* participants
    raises :class:`TooManyClientsError`; losing the session while waiting to
    enter raises :class:`aetcd.LeaseLostError`. Cancelling (or a timeout from
    ``asyncio.timeout()``) while entering or leaving removes this participant's
    key, shielded, so the others are not held up by it.
    """

    def __init__(
        self,
        client_or_session: RecipeClient | Session,
        name: str | bytes,
        count: int,
        *,
        ttl: int = DEFAULT_CONTRIB_TTL,
    ) -> None:
        self._owner = SessionOwner(client_or_session, ttl)
        self.client = self._owner.client
        self.name = to_key(name, "name")
        self.count = to_int(count, "count", minimum=1)
        self._waiters = self.name + b"/waiters"
        self._ready = self.name + b"/ready"
        self._key: bytes | None = None
        self._lease = 0

    def __repr__(self) -> str:
        state = f"entered key={self._key!r}" if self._key else "outside"
        return f"<aetcd.recipes.DoubleBarrier {self.name!r} count={self.count} {state}>"

    @property
    def key(self) -> bytes | None:
        """This participant's key while entered, else ``None``."""
        return self._key

    async def _entered(self, max_create_revision: int = 0) -> GetResult:
        return await self.client.get(
            self._waiters + b"/",
            prefix=True,
            sort_target=SortTarget.CREATE,
            sort_order=SortOrder.ASCEND,
            keys_only=True,
            max_create_revision=max_create_revision,
        )

    async def enter(self, *, timeout: float | None = None) -> None:
        """Join, and return once *count* participants have joined.

        *timeout* (seconds) bounds only the waiting for the others, not the
        round trips (each bounded by the client's timeout): ``enter(timeout=0)``
        by the participant that completes the barrier returns, and raises
        ``TimeoutError`` at once on a barrier still short of participants, whose
        key is then removed again.
        """
        timeout = wait_timeout(timeout)
        if self._key is not None:
            raise RuntimeError("this participant already entered")
        key: bytes | None = None
        lease = 0
        try:
            if len(await self._entered()) >= self.count:
                raise TooManyClientsError(f"double barrier {self.name!r} is full")
            session = await self._owner.open()
            lease = session.lease_id
            revision = 0
            while not revision:
                key = _unique_key(self._waiters)
                revision = await _create(self.client, key, b"", lease)
            entered = (await self._entered()).kvs
            if len(entered) >= self.count:
                last = entered[self.count - 1]
                if revision > last.create_revision:
                    raise TooManyClientsError(f"double barrier {self.name!r} is full")
                if revision == last.create_revision:
                    await self.client.put(self._ready, b"")  # I complete it: open for all
                    self._key, self._lease = key, lease
                    return
            try:
                finished, _ = await first_of(self._wait_ready(revision, timeout), session.lost())
            except WaitTimeout:
                raise TimeoutError(
                    f"double barrier {self.name!r} not complete after {timeout} s"
                ) from None
            if not finished:
                raise LeaseLostError(
                    f"the session was lost while entering double barrier {self.name!r}"
                )
        except BaseException:
            await self._owner.abandon(key, _lease_guard(key, lease))
            raise
        self._key, self._lease = key, lease

    async def _wait_ready(self, revision: int, timeout: float | None) -> None:
        """Return once the ready key was put at or after *revision* (when I joined).

        *timeout* bounds the waiting from the first look that finds it missing
        (:class:`WaitTimeout` then).
        """
        deadline: float | None = None
        while True:
            res = await self.client.get(self._ready, keys_only=True)
            if res.kvs and res.kvs[0].mod_revision >= revision:
                return
            if deadline is None and timeout is not None:
                deadline = asyncio.get_running_loop().time() + timeout
            try:
                # From a future revision: etcd serves such a watch at once, while
                # one from the past waits for its catch-up loop (up to 100 ms).
                async with asyncio.timeout_at(deadline) as waiting:
                    await _wait_put(self.client, self._ready, res.header.revision + 1)
                return
            except CompactedError:
                continue
            except TimeoutError:
                if waiting.expired():
                    raise WaitTimeout from None
                raise

    async def leave(self, *, timeout: float | None = None) -> None:
        """Leave, and return once every participant has left.

        The participant whose key is oldest waits for the others, which wait
        for it; the last one out removes the ready key. *timeout* (seconds)
        bounds only the waiting for the others, not the round trips:
        ``leave(timeout=0)`` by the last one out returns, and raises
        ``TimeoutError`` at once while others are still in. Either way this
        participant's key is gone afterwards, so the others are not held up.
        """
        timeout = wait_timeout(timeout)
        key, lease = self._key, self._lease
        if key is None:
            raise RuntimeError("this participant has not entered")
        self._key, self._lease = None, 0
        try:
            await self._leave(key, timeout)
        except WaitTimeout:
            raise TimeoutError(
                f"double barrier {self.name!r}: others still inside after {timeout} s"
            ) from None
        finally:
            await self._owner.abandon(key, _lease_guard(key, lease))

    async def _leave(self, key: bytes, timeout: float | None) -> None:
        deadline: float | None = None
        mine_deleted = False
        # Only the participants present now are of my round: those of the next
        # round (who may enter as soon as their own leave() returned) are ignored.
        bound = 0
        while True:
            res = await self._entered(bound)
            bound = bound or res.header.revision
            entered = res.kvs
            if not entered:
                return
            lowest = min(entered, key=lambda kv: kv.mod_revision)
            highest = max(entered, key=lambda kv: kv.mod_revision)
            if lowest.key == key:
                if len(entered) == 1:
                    # The last one out: remove the ready key and mine together.
                    await self.client.txn(success=[Op.delete(self._ready), Op.delete(key)])
                    return
                wait_for = highest  # the oldest waits for the newest, then looks again
            else:
                if not mine_deleted:
                    await self.client.delete(key)
                    mine_deleted = True
                wait_for = lowest  # everyone else waits for the oldest to go
            if deadline is None and timeout is not None:
                deadline = asyncio.get_running_loop().time() + timeout
            try:
                # The key existed at res's revision: its delete comes after it.
                async with asyncio.timeout_at(deadline) as waiting:
                    await wait_delete(self.client, wait_for.key, res.header.revision + 1)
            except CompactedError:
                continue
            except TimeoutError:
                if waiting.expired():
                    raise WaitTimeout from None
                raise

    async def __aenter__(self) -> Self:
        await self.enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()


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
