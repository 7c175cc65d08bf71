"""Session: one lease kept alive, shared by locks, elections and registrations.

The Python counterpart of Go's ``concurrency.Session``: keys written under the
session's lease vanish when the process dies (the lease expires within its TTL)
or when the session is closed (the lease is revoked).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._keys import to_int
from ..lease import MAX_LEASE_TTL, Lease
from ..ops import Compare, Op
from ._util import idempotent_cleanup, shielded

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = [
    "DEFAULT_SESSION_TTL",
    "IDLE_SESSION_LIFETIME",
    "MAX_IDLE_SESSIONS",
    "Session",
    "SessionOwner",
]

#: Go's ``concurrency`` default session TTL, in seconds.
DEFAULT_SESSION_TTL = 60


class Session:
    """A lease kept alive on the client's shared keep-alive stream.

    ``async with client.session(ttl=60) as session:`` grants the lease and keeps
    it alive; leaving the block revokes it (also on cancellation), which
    deletes every key written with it. ``alive`` turns False and ``await
    session.lost()`` returns when the lease is lost (expired, revoked
    elsewhere, or unreachable for longer than its TTL); it never comes back:
    open a new session.
    """

    def __init__(self, client: RecipeClient, *, ttl: int = DEFAULT_SESSION_TTL) -> None:
        self.client = client
        self.ttl = to_int(ttl, "ttl", minimum=1, maximum=MAX_LEASE_TTL)
        self._context: object | None = None
        self._lease: Lease | None = None
        self._retire: asyncio.TimerHandle | None = None  # while idle (SessionOwner)

    def __repr__(self) -> str:
        if self._lease is None:
            return f"<aetcd.recipes.Session ttl={self.ttl} not open>"
        state = "alive" if self._lease.alive else "lost"
        return f"<aetcd.recipes.Session lease={self._lease.id:#x} {state}>"

    async def open(self) -> Self:
        """Grant the lease and start keeping it alive (what ``async with`` does)."""
        if self._lease is not None:
            raise RuntimeError("this session is already open")
        context = self.client.lease(self.ttl)
        self._lease = await context.__aenter__()
        self._context = context
        return self

    async def close(self) -> None:
        """Stop the keep-alives and revoke the lease (shielded from cancellation)."""
        context, self._context = self._context, None
        if context is not None:
            await context.__aexit__(None, None, None)  # type: ignore[attr-defined]

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        context, self._context = self._context, None
        if context is not None:
            await context.__aexit__(exc_type, exc, tb)  # type: ignore[attr-defined]

    @property
    def lease(self) -> Lease:
        """The session's lease (the session must be open)."""
        if self._lease is None:
            raise RuntimeError("the session is not open: use `async with client.session()`")
        return self._lease

    @property
    def lease_id(self) -> int:
        """The id of the session's lease."""
        return self.lease.id

    @property
    def alive(self) -> bool:
        """Whether the lease is still believed alive."""
        return self._lease is not None and self._lease.alive and self._context is not None

    async def lost(self) -> None:
        """Return once the session's lease is lost."""
        await self.lease.lost()


#: Idle private sessions kept per client and TTL for the next private lock or election.
MAX_IDLE_SESSIONS = 8

#: Seconds an idle private session waits for reuse. Then its keep-alives stop
#: and its lease, which holds no keys, expires on the server within its TTL.
IDLE_SESSION_LIFETIME = 60.0


class _IdleSessions:
    """Idle private sessions of one client, per TTL, for its next private lock or election.

    Owned by the client (``client._idle_sessions()``), which clears it on
    close: no retirement timer outlives the client.
    """

    def __init__(self) -> None:
        self._by_ttl: dict[int, list[Session]] = {}
        self._closed = False

    def take(self, ttl: int) -> Session | None:
        """An idle session with *ttl* whose lease is still alive."""
        stack = self._by_ttl.get(ttl)
        while stack:
            session = stack.pop()
            if session._retire is not None:
                session._retire.cancel()
                session._retire = None
            if session.alive:
                return session
        return None

    def keep(self, session: Session) -> bool:
        """Keep *session* for reuse; False when enough are kept or the client closed."""
        stack = self._by_ttl.setdefault(session.ttl, [])
        if self._closed or len(stack) >= MAX_IDLE_SESSIONS or not session.alive:
            return False
        stack.append(session)
        session._retire = asyncio.get_running_loop().call_later(
            IDLE_SESSION_LIFETIME, self._retire, session
        )
        return True

    def _retire(self, session: Session) -> None:
        """Drop an idle session that was not reused in time: release its lease.

        No RPC (so no task to own): the lease holds no keys and expires on the
        server within its TTL. A process that took one lock keeps no lease
        alive for long after.
        """
        session._retire = None
        stack = self._by_ttl.get(session.ttl)
        if stack is not None and session in stack:
            stack.remove(session)
        lease = session._lease
        if lease is not None:
            lease.release()

    def clear(self) -> None:
        """Forget every idle session and cancel its timer (the client is closing)."""
        self._closed = True
        by_ttl, self._by_ttl = self._by_ttl, {}
        for stack in by_ttl.values():
            for session in stack:
                if session._retire is not None:
                    session._retire.cancel()
                    session._retire = None


class SessionOwner:
    """The session a recipe writes its keys with: shared (given by the user) or private.

    A private session belongs to one recipe object while it holds a key. It is
    taken from the client's idle private sessions of the same TTL, or opened
    (a lease granted); when the recipe lets go, :meth:`abandon` deletes the key
    and keeps the session, lease alive and holding no keys, for the next
    private lock or election of the client (at most :data:`MAX_IDLE_SESSIONS`
    per TTL, each for at most :data:`IDLE_SESSION_LIFETIME` seconds; idle
    leases expire after their TTL once retired or the client is closed).
    A cycle of ``async with client.lock(name):`` is then two round trips, not
    a grant, a txn, a delete and a revoke. A shared session is never closed
    here. Lock, election and Go's contrib recipes all use this.
    """

    def __init__(self, client_or_session: RecipeClient | Session, ttl: int) -> None:
        if isinstance(client_or_session, Session):
            self.client = client_or_session.client
            self.shared: Session | None = client_or_session
        else:
            self.client = client_or_session
            self.shared = None
        self.ttl = ttl
        self.session: Session | None = None

    @property
    def alive(self) -> bool:
        """Whether a session is open and its lease believed alive."""
        return self.session is not None and self.session.alive

    async def open(self) -> Session:
        """The session to write with (a private one: idle, or opened now)."""
        if self.shared is not None:
            self.session = self.shared
        elif self.session is None or not self.session.alive:
            self.session = (
                self.client._idle_sessions().take(self.ttl)
                or await Session(self.client, ttl=self.ttl).open()
            )
        return self.session

    async def abandon(self, key: bytes | None, guard: Compare | None) -> None:
        """Delete *key* if *guard* holds; keep or close a private session.

        *guard* is None when the key may exist but its create revision is not
        known (the write's outcome is unknown): a private session is then
        closed, its lease revoked, which deletes whatever it wrote. A private
        session whose key is deleted is kept for reuse; one whose delete
        failed is closed. Shielded from cancellation and bounded by the
        client's timeout, so a cancelled waiter still removes its key.
        """
        timeout = self.client.settings.timeout
        session = self.session
        if self.shared is None:
            self.session = None
            if session is None:
                return
        deleted = key is None
        try:
            if key is not None and guard is not None:
                ops = [Op.delete(key)]
                await idempotent_cleanup(
                    lambda: self.client.txn(compare=[guard], success=ops), timeout
                )
                deleted = True
        finally:
            if self.shared is None and session is not None:
                if not (deleted and self.client._idle_sessions().keep(session)):
                    await shielded(session.close(), timeout)
