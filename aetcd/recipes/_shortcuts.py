"""The recipes' shortcuts on :class:`aetcd.Client`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .election import DEFAULT_ELECTION_TTL, Election
from .lock import DEFAULT_LOCK_TTL, Lock
from .session import DEFAULT_SESSION_TTL, Session

if TYPE_CHECKING:
    from ..client import Client


class RecipesAPI:
    """``client.session()``, ``client.lock()``, ``client.election()``."""

    def session(self, ttl: int = DEFAULT_SESSION_TTL) -> Session:
        """A :class:`aetcd.recipes.Session`: ``async with client.session(ttl=60) as s:``."""
        return Session(self._self(), ttl=ttl)

    def lock(
        self,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_LOCK_TTL,
        timeout: float | None = None,
        session: Session | None = None,
    ) -> Lock:
        """A :class:`aetcd.recipes.Lock`: ``async with client.lock("name", timeout=5):``.

        Without *session* the lock has a private session with *ttl* (its own
        lease); entering raises :class:`aetcd.LockTimeoutError` after *timeout*.
        """
        return Lock(session if session is not None else self._self(), name, ttl=ttl,
                    timeout=timeout)

    def election(
        self,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_ELECTION_TTL,
        session: Session | None = None,
    ) -> Election:
        """A :class:`aetcd.recipes.Election` handle for the election *name*."""
        return Election(session if session is not None else self._self(), name, ttl=ttl)

    def _self(self) -> Client:
        from ..client import Client

        assert isinstance(self, Client)
        return self
