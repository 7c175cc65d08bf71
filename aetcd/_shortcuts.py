"""The recipe shortcuts of :class:`aetcd.Client` (``client.lock(...)`` and kin).

Each builds its recipe for a client, importing the recipe module on first use:
``import aetcd`` loads no recipe. ``Client`` keeps the signatures (and takes
the docstrings from here), so its public surface reads in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recipes._client import RecipeClient
    from .recipes.config import ConfigMirror
    from .recipes.discovery import Discovery, Registration
    from .recipes.election import Election
    from .recipes.heartbeat import Heartbeat
    from .recipes.lock import Lock
    from .recipes.session import Session

# The recipes' defaults, repeated so that Client's signatures need no recipe
# module (tests/unit/test_client_composition.py checks they agree).
DEFAULT_SESSION_TTL = 60
DEFAULT_LOCK_TTL = 10
DEFAULT_ELECTION_TTL = 10


def session(client: RecipeClient, ttl: int) -> Session:
    """A :class:`aetcd.recipes.Session`: ``async with client.session(ttl=60) as s:``."""
    from .recipes.session import Session

    return Session(client, ttl=ttl)


def lock(
    client: RecipeClient,
    name: str | bytes,
    ttl: int,
    timeout: float | None,
    session: Session | None,
) -> Lock:
    """A :class:`aetcd.recipes.Lock`: ``async with client.lock("name", timeout=5):``.

    Without *session* the lock has a private session with *ttl* (a lease
    of its own while held, reused by the client's next private lock once
    released); entering raises :class:`aetcd.LockTimeoutError` after *timeout*.
    """
    from .recipes.lock import Lock

    return Lock(client if session is None else session, name, ttl=ttl, timeout=timeout)


def election(
    client: RecipeClient, name: str | bytes, ttl: int, session: Session | None
) -> Election:
    """A :class:`aetcd.recipes.Election` handle for the election *name*."""
    from .recipes.election import Election

    return Election(client if session is None else session, name, ttl=ttl)


def heartbeat(client: RecipeClient, key: str | bytes, value: str | bytes, ttl: int) -> Heartbeat:
    """A :class:`aetcd.recipes.Heartbeat`: *key* exists while this process is alive.

    ``async with client.heartbeat("heart-ping", "live", ttl=5) as hb:``
    """
    from .recipes.heartbeat import Heartbeat

    return Heartbeat(client, key, value, ttl=ttl)


def register(
    client: RecipeClient, service: str, addr: str, ttl: int, metadata: object
) -> Registration:
    """Register *addr* under *service* (Go ``naming/endpoints`` layout) while alive.

    ``async with client.register("my-service", "10.0.0.7:8080", ttl=10):``
    """
    from .recipes.discovery import Registration

    return Registration(client, service, addr, ttl=ttl, metadata=metadata)


def discover(client: RecipeClient, service: str) -> Discovery:
    """A live view of *service*'s instances: ``async with client.discover("svc") as d:``."""
    from .recipes.discovery import Discovery

    return Discovery(client, service)


def config(
    client: RecipeClient, prefix: str | bytes, decode: Callable[[bytes], object] | None
) -> ConfigMirror:
    """A hot-reloaded read-only mirror of *prefix*.

    ``async with client.config("app/config/") as cfg: cfg["db/url"]``
    """
    from .recipes.config import ConfigMirror

    return ConfigMirror(client, prefix, decode=decode)
