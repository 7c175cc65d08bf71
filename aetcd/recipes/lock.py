"""A distributed lock with Go ``concurrency.Mutex``'s algorithm and key layout.

Each contender writes ``<name>/<lease id in lowercase hex>`` with its session's
lease (one txn, only if the key does not exist yet), then waits, by watch, for
every older key under ``<name>/`` to be deleted. The create revision of the
contender's key orders the queue (FIFO) and is the lock's fencing token.

The layout is byte-for-byte the one ``etcdctl lock`` and Go services use, so
they all exclude each other.

A lock held by a process that dies is released when its lease expires (within
the session TTL). A lock is **not** a guarantee by itself that only one holder
acts at a time (a paused holder may not know it lost the lock): make the
protected writes conditional with :meth:`Lock.guard` so etcd rejects writes
from a holder that lost it.
"""

from __future__ import annotations

import functools
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._keys import to_key
from ..errors import LeaseLostError, LockTimeoutError
from ..ops import Compare, Op
from ..types import GetResult, SortOrder, SortTarget
from ._util import first_of, wait_timeout
from ._wait import WaitTimeout, wait_deletes
from .session import Session, SessionOwner

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = ["DEFAULT_LOCK_TTL", "Lock"]

#: ``etcdctl lock``'s default session TTL, in seconds.
DEFAULT_LOCK_TTL = 10


@functools.lru_cache(maxsize=256)
def _owner_op(prefix: bytes) -> Op:
    """The oldest key under *prefix* (Go ``WithFirstCreate``); Ops are immutable,
    so one per lock name is built and reused."""
    return Op.get(
        prefix,
        prefix=True,
        sort_target=SortTarget.CREATE,
        sort_order=SortOrder.ASCEND,
        limit=1,
    )


class Lock:
    """A distributed mutex named *name*.

    ``Lock(client, name, ttl=10)`` uses a private session (a lease of its own
    while it holds or waits: taken from the client's idle private sessions or
    granted on acquire, and kept for reuse once its key is deleted on release;
    see the Sessions page of the recipes guide); ``Lock(session, name)`` uses a
    shared one (as in Go, two locks of one session do not exclude each other).

    Use ``async with client.lock(name, timeout=5) as lock:`` (raises
    :class:`aetcd.LockTimeoutError` instead of running the body unlocked) or
    :meth:`acquire` / :meth:`try_acquire` / :meth:`release`.
    """

    def __init__(
        self,
        client_or_session: RecipeClient | Session,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_LOCK_TTL,
        timeout: float | None = None,
    ) -> None:
        self._owner = SessionOwner(client_or_session, ttl)
        self._client = self._owner.client
        self.name = to_key(name, "name")
        self.prefix = self.name + b"/"
        self._timeout = wait_timeout(timeout)
        self._key: bytes | None = None
        self._revision = 0

    def __repr__(self) -> str:
        state = f"held key={self._key!r} revision={self._revision}" if self._key else "not held"
        return f"<aetcd.recipes.Lock {self.name!r} {state}>"

    # -- state -------------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        """``<name>/<lease id hex>``: this holder's key (the lock must be held)."""
        if self._key is None:
            raise RuntimeError("the lock is not held")
        return self._key

    @property
    def revision(self) -> int:
        """The fencing token: the create revision of :attr:`key` (the lock must be held)."""
        if self._key is None:
            raise RuntimeError("the lock is not held")
        return self._revision

    @property
    def held(self) -> bool:
        """Whether this object believes it holds the lock (False once its lease is lost)."""
        return self._key is not None and self._owner.alive

    def guard(self) -> Compare:
        """The compare to add to your own txns: it holds only while this lock is held.

        ``await client.txn([lock.guard()], [Op.put("data", "x")])`` is applied
        only if the lock's key still exists with the same create revision, so a
        holder that lost the lock cannot write.
        """
        return Compare.create_revision(self.key) == self.revision

    async def is_owner(self, *, timeout: float | None = None) -> bool:
        """Ask etcd whether this object still holds the lock."""
        if self._key is None:
            return False
        res = await self._client.get(self._key, keys_only=True, timeout=timeout)
        return bool(res.kvs) and res.kvs[0].create_revision == self._revision

    async def lost(self) -> None:
        """Return once the lock's session lease is lost (the lock is then not held)."""
        session = self._owner.session
        if session is None:
            raise RuntimeError("the lock is not held")
        await session.lost()

    # -- acquire / release -------------------------------------------------------------

    async def acquire(self, timeout: float | None = None) -> None:
        """Wait until the lock is held.

        Waiters are served in the order they asked (create revision), each
        watching only its predecessor. *timeout* (seconds) bounds only the
        waiting for other holders, not the round trips to etcd (each bounded
        by the client's timeout): ``acquire(timeout=0)`` takes a free lock.
        When it expires, raises :class:`aetcd.LockTimeoutError`; on loss of the
        session while waiting :class:`aetcd.LeaseLostError`. In both cases, and
        on cancellation, this waiter's key is removed again.
        """
        timeout = wait_timeout(timeout)
        if self._key is not None:
            raise RuntimeError("this Lock object already holds the lock")
        session = await self._owner.open()
        key = self.prefix + f"{session.lease_id:x}".encode()
        created = False
        revision = 0
        try:
            created, revision, owner = await self._enqueue(session, key)
            if not owner:
                try:
                    await self._wait(session, revision, timeout)
                except WaitTimeout:
                    raise LockTimeoutError(
                        f"lock {self.name!r} not acquired within {timeout} s"
                    ) from None
                res = await self._client.get(key, keys_only=True)
                if not res.kvs or res.kvs[0].create_revision != revision:
                    raise LeaseLostError(
                        f"lock key {key!r} vanished while waiting: the session's lease was lost"
                    )
        except BaseException:
            await self._abandon(key, revision if created else 0)
            raise
        self._key = key
        self._revision = revision

    async def try_acquire(self) -> bool:
        """Take the lock if it is free right now; never waits for another holder."""
        if self._key is not None:
            raise RuntimeError("this Lock object already holds the lock")
        session = await self._owner.open()
        key = self.prefix + f"{session.lease_id:x}".encode()
        created = False
        revision = 0
        try:
            created, revision, owner = await self._enqueue(session, key)
        except BaseException:
            await self._abandon(key, revision if created else 0)
            raise
        if not owner:
            await self._abandon(key, revision if created else 0)
            return False
        self._key = key
        self._revision = revision
        return True

    async def release(self) -> None:
        """Release the lock: delete its key if it is still ours (shielded from cancellation).

        Safe to call when not held. A private session is kept for the client's
        next private lock or election (closed, its lease revoked, if the delete
        failed).
        """
        key, revision = self._key, self._revision
        self._key = None
        self._revision = 0
        await self._abandon(key, revision)

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

    # -- internals -----------------------------------------------------------------------

    async def _enqueue(self, session: Session, key: bytes) -> tuple[bool, int, bool]:
        """One txn: create my key unless it exists; read the queue's head.

        Returns (created, my create revision, whether I am the owner).
        """
        res = await self._client.txn(
            compare=[Compare.create_revision(key) == 0],
            success=[Op.put(key, b"", lease=session.lease_id), _owner_op(self.prefix)],
            failure=[Op.get(key), _owner_op(self.prefix)],
        )
        if res.succeeded:
            revision = res.header.revision
        else:
            mine = res.responses[0]
            assert isinstance(mine, GetResult)
            revision = mine.kvs[0].create_revision
        head = res.responses[1]
        assert isinstance(head, GetResult)
        owner = not head.kvs or head.kvs[0].create_revision == revision
        return res.succeeded, revision, owner

    async def _wait(self, session: Session, revision: int, timeout: float | None) -> None:
        finished, _ = await first_of(
            wait_deletes(self._client, self.prefix, revision - 1, timeout), session.lost()
        )
        if not finished:
            raise LeaseLostError(f"the session of lock {self.name!r} was lost while waiting")

    async def _abandon(self, key: bytes | None, revision: int) -> None:
        """Delete *key* if it still has *revision*; keep or close a private session."""
        guard = Compare.create_revision(key) == revision if key is not None and revision else None
        await self._owner.abandon(key, guard)
