"""Session: one lease kept alive, shared by locks, elections and registrations.

The Python counterpart of Go's ``concurrency.Session``: keys written under the
session's lease vanish when the process dies (the lease expires within its TTL)
or when the session is closed (the lease is revoked).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._keys import to_int
from ..lease import MAX_LEASE_TTL, Lease
from ..ops import Compare, Op
from ._util import idempotent_cleanup, shielded

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["DEFAULT_SESSION_TTL", "Session", "SessionOwner"]

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

    def __init__(self, client: Client, *, ttl: int = DEFAULT_SESSION_TTL) -> None:
        self.client = client
        self.ttl = to_int(ttl, "ttl", minimum=1, maximum=MAX_LEASE_TTL)
        self._context: object | None = None
        self._lease: Lease | None = None

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


class SessionOwner:
    """The session a recipe writes its keys with: shared (given by the user) or private.

    A private session is opened on first use (again if the last one was lost)
    and closed, revoking its lease, by :meth:`abandon`; a shared one is never
    closed here. Lock, election and Go's contrib recipes all use this.
    """

    def __init__(self, client_or_session: Client | Session, ttl: int) -> None:
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
        """The session to write with (opening a private one if needed)."""
        if self.shared is not None:
            self.session = self.shared
        elif self.session is None or not self.session.alive:
            self.session = await Session(self.client, ttl=self.ttl).open()
        return self.session

    async def abandon(self, key: bytes | None, guard: Compare | None) -> None:
        """Delete *key* if *guard* holds (a shared session), or close a private one.

        Closing a private session revokes its lease, which deletes every key
        written with it (*key* included) in the same step: one round trip
        instead of a delete and a revoke. Shielded from cancellation and
        bounded by the client's timeout, so a cancelled waiter still removes its
        key.
        """
        timeout = self.client.settings.timeout
        try:
            if self.shared is not None and key is not None and guard is not None:
                ops = [Op.delete(key)]
                await idempotent_cleanup(
                    lambda: self.client.txn(compare=[guard], success=ops), timeout
                )
        finally:
            if self.shared is None and self.session is not None:
                session, self.session = self.session, None
                await shielded(session.close(), timeout)
