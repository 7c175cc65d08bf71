"""Go's ``recipe.Barrier`` and ``recipe.DoubleBarrier``.

Key layouts: :class:`Barrier` ``<name>``: the single key ``<name>`` (no lease).
:class:`DoubleBarrier` ``<name>``: ``<name>/waiters/<unix ns>`` (session lease)
and ``<name>/ready`` (no lease). Every wait is a watch; a participant that gives
up removes its key again, shielded from cancellation.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._keys import to_int, to_key
from ..errors import CompactedError, LeaseLostError, TooManyClientsError
from ..ops import Compare, LeaseLike, Op
from ..types import GetResult, SortOrder, SortTarget
from ._experimental import DEFAULT_CONTRIB_TTL, _create, _lease_guard, _unique_key, _wait_put
from ._util import first_of, shielded, wait_timeout
from ._wait import WaitTimeout, wait_delete
from .session import Session, SessionOwner

if TYPE_CHECKING:
    from ._client import RecipeClient


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
