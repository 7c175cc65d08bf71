"""Go's ``recipe.RWMutex``: many readers or one writer.

Key layout: ``<name>/read/<unix ns>`` and ``<name>/write/<unix ns>``, written
with the holder's session lease. A waiter that gives up (timeout,
cancellation, error) removes its key again, shielded from cancellation.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

from .._keys import to_key
from ..errors import LeaseLostError, LockTimeoutError
from ..ops import Compare
from ._experimental import DEFAULT_CONTRIB_TTL, _create, _lease_guard, _unique_key
from ._util import first_of, wait_timeout
from ._wait import WaitTimeout, wait_deletes
from .session import Session, SessionOwner

if TYPE_CHECKING:
    from ._client import RecipeClient


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
