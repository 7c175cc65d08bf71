"""The recipes' shortcuts on :class:`aetcd.Client`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .election import DEFAULT_ELECTION_TTL, Election
from .lock import DEFAULT_LOCK_TTL, Lock
from .session import DEFAULT_SESSION_TTL, Session

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..client import Client
    from .config import ConfigMirror
    from .discovery import Discovery, Registration
    from .heartbeat import Heartbeat


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

        Without *session* the lock has a private session with *ttl* (a lease
        of its own while held, reused by the client's next private lock once
        released); entering raises :class:`aetcd.LockTimeoutError` after *timeout*.
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

    def heartbeat(
        self, key: str | bytes, value: str | bytes = b"", *, ttl: int = 5
    ) -> Heartbeat:
        """A :class:`aetcd.recipes.Heartbeat`: *key* exists while this process is alive.

        ``async with client.heartbeat("heart-ping", "live", ttl=5) as hb:``
        """
        from .heartbeat import Heartbeat

        return Heartbeat(self._self(), key, value, ttl=ttl)

    def register(
        self,
        service: str,
        addr: str,
        *,
        ttl: int = 10,
        metadata: object = None,
    ) -> Registration:
        """Register *addr* under *service* (Go ``naming/endpoints`` layout) while alive.

        ``async with client.register("my-service", "10.0.0.7:8080", ttl=10):``
        """
        from .discovery import Registration

        return Registration(self._self(), service, addr, ttl=ttl, metadata=metadata)

    def discover(self, service: str) -> Discovery:
        """A live view of *service*'s instances: ``async with client.discover("svc") as d:``."""
        from .discovery import Discovery

        return Discovery(self._self(), service)

    def config(
        self,
        prefix: str | bytes,
        *,
        decode: Callable[[bytes], object] | None = None,
    ) -> ConfigMirror:
        """A hot-reloaded read-only mirror of *prefix*.

        ``async with client.config("app/config/") as cfg: cfg["db/url"]``
        """
        from .config import ConfigMirror

        return ConfigMirror(self._self(), prefix, decode=decode)

    def _self(self) -> Client:
        from ..client import Client

        assert isinstance(self, Client)
        return self
