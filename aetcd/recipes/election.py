"""Leader election with Go ``concurrency.Election``'s algorithm and key layout.

Candidates write ``<name>/<lease id hex>`` (value: their proposal) with their
session's lease; the candidate whose key has the lowest create revision leads.
``etcdctl elect`` and Go services use the same layout, so they take part in
the same elections.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .._keys import to_bytes, to_key
from ..errors import CompactedError, ElectionNotLeaderError, LeaseLostError
from ..ops import Compare, Op
from ..types import EventType, GetResult, KeyValue, SortOrder, SortTarget
from ._util import first_of, wait_timeout
from ._wait import WaitTimeout, wait_deletes
from .session import Session, SessionOwner

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = ["DEFAULT_ELECTION_TTL", "Election"]

DEFAULT_ELECTION_TTL = 10


class Election:
    """One participant's handle on the election *name*.

    ``Election(client, name, ttl=10)`` campaigns with a private session (a
    lease of its own from :meth:`campaign` to :meth:`resign`, then kept idle
    for the client's next private lock or election);
    ``Election(session, name)`` uses a shared one. :meth:`leader` and
    :meth:`observe` need no session.
    """

    def __init__(
        self,
        client_or_session: RecipeClient | Session,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_ELECTION_TTL,
    ) -> None:
        self._owner = SessionOwner(client_or_session, ttl)
        self._client = self._owner.client
        self.name = to_key(name, "name")
        self.prefix = self.name + b"/"
        self._key: bytes | None = None
        self._revision = 0

    def __repr__(self) -> str:
        state = f"leader key={self._key!r}" if self._key else "not leader"
        return f"<aetcd.recipes.Election {self.name!r} {state}>"

    @property
    def key(self) -> bytes | None:
        """My candidate key while campaigning or leading, else ``None``."""
        return self._key

    @property
    def revision(self) -> int:
        """The create revision of my key (the leadership's fencing token), or 0."""
        return self._revision

    @property
    def is_leader(self) -> bool:
        """Whether :meth:`campaign` returned and :meth:`resign` was not called since,
        and the session is still alive."""
        return self._key is not None and self._owner.alive

    def guard(self) -> Compare:
        """The compare that holds only while I lead (add it to your own txns)."""
        if self._key is None:
            raise ElectionNotLeaderError("not campaigning in this election")
        return Compare.create_revision(self._key) == self._revision

    async def campaign(self, value: str | bytes, *, timeout: float | None = None) -> None:
        """Become a candidate with *value* and return once leader.

        Candidates are served in the order they joined. *timeout* (seconds)
        bounds only the waiting for earlier candidates, not the round trips to
        etcd (each bounded by the client's timeout): ``campaign(v, timeout=0)``
        wins an election nobody leads, and raises ``TimeoutError`` at once
        otherwise. On timeout, cancellation or any failure the candidacy is
        withdrawn (my key deleted) and the error re-raised; if the session is
        lost while waiting, :class:`aetcd.LeaseLostError`.
        """
        val = to_bytes(value, "value")
        timeout = wait_timeout(timeout)
        if self._key is not None:
            raise RuntimeError("already campaigning; resign() first")
        session = await self._owner.open()
        key = self.prefix + f"{session.lease_id:x}".encode()
        revision = 0
        try:
            res = await self._client.txn(
                compare=[Compare.create_revision(key) == 0],
                success=[Op.put(key, val, lease=session.lease_id)],
                failure=[Op.get(key)],
            )
            self._key = key
            if res.succeeded:
                self._revision = revision = res.header.revision
            else:
                # My key survives from an earlier campaign on this session.
                existing = res.responses[0]
                assert isinstance(existing, GetResult)
                self._revision = revision = existing.kvs[0].create_revision
                if existing.kvs[0].value != val:
                    await self.proclaim(val)
            try:
                finished, _ = await first_of(
                    wait_deletes(self._client, self.prefix, revision - 1, timeout), session.lost()
                )
            except WaitTimeout:
                raise TimeoutError(f"not leader of {self.name!r} within {timeout} s") from None
            if not finished:
                raise LeaseLostError(f"the session was lost while campaigning in {self.name!r}")
            mine = await self._client.get(key, keys_only=True)
            if not mine.kvs or mine.kvs[0].create_revision != revision:
                raise LeaseLostError(f"my candidate key {key!r} vanished while waiting")
        except BaseException:
            await self._withdraw(key, revision)
            raise

    async def proclaim(self, value: str | bytes, *, timeout: float | None = None) -> None:
        """Change the leader's value without a new election (I must be the leader).

        Raises :class:`aetcd.ElectionNotLeaderError` if my key is gone or replaced.
        """
        val = to_bytes(value, "value")
        session = self._owner.session
        if self._key is None or session is None:
            raise ElectionNotLeaderError("not campaigning in this election")
        res = await self._client.txn(
            compare=[Compare.create_revision(self._key) == self._revision],
            success=[Op.put(self._key, val, lease=session.lease_id)],
            timeout=timeout,
        )
        if not res.succeeded:
            raise ElectionNotLeaderError(f"{self._key!r} is no longer the leader key")

    async def resign(self) -> None:
        """Give up leadership (or candidacy): delete my key if it is still mine."""
        key, revision = self._key, self._revision
        await self._withdraw(key, revision)

    async def leader(self, *, timeout: float | None = None) -> KeyValue | None:
        """The current leader's key and value, or ``None`` when nobody leads."""
        res = await self._client.get(
            self.prefix,
            prefix=True,
            sort_target=SortTarget.CREATE,
            sort_order=SortOrder.ASCEND,
            limit=1,
            timeout=timeout,
        )
        return res.kvs[0] if res.kvs else None

    async def observe(self) -> AsyncIterator[KeyValue]:
        """Yield the leader's key-value each time leadership or its value changes.

        Starts with the current leader (waiting for one if nobody leads), then
        follows every event under the election's prefix from the revision it
        read, so each change (a new leader, a :meth:`proclaim`) is yielded once
        and in revision order, however short a leadership and however slow the
        consumer (events wait in the watch's bounded buffer). Only a compaction
        of the history not yet followed loses changes: observe then reads the
        current leader again and goes on from there. Runs until the consumer
        stops.
        """
        last: tuple[bytes, int] | None = None
        while True:
            res = await self._client.get(
                self.prefix, prefix=True, sort_target=SortTarget.CREATE, sort_order=SortOrder.ASCEND
            )
            candidates = {kv.key: kv for kv in res.kvs}
            leader = min(candidates.values(), key=_rank, default=None)
            if leader is not None and last != (leader.key, leader.mod_revision):
                last = (leader.key, leader.mod_revision)
                yield leader
            try:
                async with (
                    self._client.watch(
                        self.prefix, prefix=True, start_revision=res.header.revision + 1
                    ) as watch,
                    contextlib.aclosing(watch.responses()) as responses,
                ):
                    async for response in responses:
                        events = response.events
                        i = 0
                        while i < len(events):
                            # Apply one revision's events (a txn's writes) at a time.
                            revision = events[i].kv.mod_revision
                            created = False
                            while i < len(events) and events[i].kv.mod_revision == revision:
                                kv = events[i].kv
                                if events[i].type is EventType.DELETE:
                                    candidates.pop(kv.key, None)
                                else:
                                    created = created or kv.key not in candidates
                                    candidates[kv.key] = kv
                                i += 1
                            if leader is None or created or leader.key not in candidates:
                                leader = min(candidates.values(), key=_rank, default=None)
                            else:
                                leader = candidates[leader.key]
                            if leader is not None and last != (leader.key, leader.mod_revision):
                                last = (leader.key, leader.mod_revision)
                                yield leader
            except CompactedError:
                continue  # history moved on: look at the current leader again

    async def _withdraw(self, key: bytes | None, revision: int) -> None:
        self._key = None
        self._revision = 0
        guard = Compare.create_revision(key) == revision if key is not None and revision else None
        await self._owner.abandon(key, guard)


def _rank(kv: KeyValue) -> tuple[int, bytes]:
    """Leadership order: the oldest candidate key leads (by key among a txn's keys)."""
    return kv.create_revision, kv.key
