"""Service registration and discovery in etcd's Go ``naming/endpoints`` layout.

A service instance is the key ``<service>/<addr>`` whose value is the JSON that
Go's ``endpoints.Manager.AddEndpoint`` writes, ``{"Op":0,"Addr":"<addr>",
"Metadata":<metadata>}``, attached to a lease kept alive. Go gRPC clients using
etcd's resolver (``etcd:///<service>``) therefore find Python services, and
:class:`Discovery` finds Go ones. As in Go, readers use ``Addr`` from the value
(not the key) and ignore ``Op``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from .._keys import to_int, to_key
from ..errors import InvalidArgumentError
from .config import ConfigChange, ConfigMirror
from .heartbeat import Heartbeat

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = [
    "DEFAULT_REGISTRATION_TTL",
    "Discovery",
    "DiscoveryUpdates",
    "Instance",
    "Registration",
    "decode_endpoint",
    "encode_endpoint",
]

log = logging.getLogger("aetcd")

#: Default TTL of a registration's lease, in seconds.
DEFAULT_REGISTRATION_TTL: Final = 10

# Go's encoding/json escapes these even inside strings (HTML safety); do the same
# so the stored bytes are exactly what a Go service would write.
_GO_ESCAPES: Final = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


@dataclass(frozen=True, slots=True)
class Instance:
    """One discovered service instance: its address and metadata (any JSON value).

    Hashable only when its metadata is (a dict or list is not).
    """

    addr: str
    metadata: Any = None


def encode_endpoint(addr: str, metadata: Any = None) -> bytes:
    """The value Go's ``endpoints.AddEndpoint`` stores for *addr* and *metadata*.

    Compact JSON with the fields in Go's order (``Op``, ``Addr``, ``Metadata``),
    object keys inside *metadata* sorted as Go sorts map keys, ``<``, ``>`` and
    ``&`` escaped as Go does (only floats may be spelt differently, e.g.
    ``1e-07`` for Go's ``1e-7``: the same number). Raises ``TypeError`` if
    *metadata* is not JSON-serialisable (NaN and infinities included, which Go
    refuses too).
    """
    if not isinstance(addr, str):
        raise TypeError(f"addr must be str, not {type(addr).__name__}")
    try:
        meta = json.dumps(
            metadata, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
        quoted = json.dumps(addr, ensure_ascii=False)
        text = f'{{"Op":0,"Addr":{quoted},"Metadata":{meta}}}'
        return text.translate(_GO_ESCAPES).encode()
    except (TypeError, ValueError) as exc:  # ValueError: NaN, cycles, lone surrogates
        raise TypeError(f"addr and metadata must be JSON-serialisable: {exc}") from None


def decode_endpoint(value: bytes) -> Instance:
    """Parse a ``naming/endpoints`` value into an :class:`Instance`.

    Accepts what Go's resolver accepts: a JSON object with a string ``Addr``
    (field names matched case-insensitively, as Go does) and any
    ``Metadata``; ``Op`` is ignored. Raises ``ValueError`` otherwise (an empty
    ``Addr`` included: nothing could connect to it).
    """
    obj = json.loads(value)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    addr = _field(obj, "Addr")
    if not isinstance(addr, str) or not addr:
        raise ValueError(f"Addr must be a non-empty string, got {addr!r}")
    return Instance(addr, _field(obj, "Metadata"))


def _field(obj: dict[str, Any], name: str) -> Any:
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if key.lower() == lowered:
            return value
    return None


class Registration(Heartbeat):
    """Register *addr* as an instance of *service* while the block runs.

    ``async with client.register("my-service", "10.0.0.7:8080", ttl=10,
    metadata={"zone": "a"}) as reg:`` writes the key ``my-service/10.0.0.7:8080``
    with the Go ``naming/endpoints`` value, on a lease kept alive. It is a
    :class:`aetcd.recipes.Heartbeat`: re-registered if the lease is lost and the
    server comes back, removed at once on exit (also by cancellation), and
    gone within about *ttl* seconds if the process dies. ``reg.alive``,
    ``await reg.lost()``, ``await reg.restored()`` and ``reg.registrations``
    work as there.

    *metadata* must be JSON-serialisable (``TypeError`` otherwise); *addr* a
    non-empty ``str``. Both are checked before any I/O.
    """

    def __init__(
        self,
        client: RecipeClient,
        service: str | bytes,
        addr: str,
        *,
        ttl: int = DEFAULT_REGISTRATION_TTL,
        metadata: Any = None,
    ) -> None:
        prefix = to_key(service, "service")
        value = encode_endpoint(addr, metadata)
        if not addr:
            raise InvalidArgumentError("addr must not be empty", code=None)
        super().__init__(client, prefix + b"/" + addr.encode(), value, ttl=ttl)
        self.service = service
        self.addr = addr
        self.metadata = metadata


class DiscoveryUpdates:
    """One subscriber's stream of instance sets (``d.updates()``).

    Yields a fresh ``dict[str, Instance]`` (addr -> instance): first the set
    at subscription, then the set each time it changes. A consumer slower than
    the changes gets the latest set (sets in between are skipped), so memory
    stays bounded. Ends when the discovery is closed; raises its error if it
    gave up (client closed). Also an async context manager that unsubscribes.
    """

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery
        self._pending: dict[str, Instance] | None = dict(discovery._instances)
        self._wakeup = asyncio.Event()
        self._error: BaseException | None = None
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Instance]:
        while self._pending is None:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._done:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        snapshot, self._pending = self._pending, None
        return snapshot

    async def aclose(self) -> None:
        """Unsubscribe; the iterator ends (after a set not yet delivered)."""
        self._end(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(None)

    def _push(self, instances: dict[str, Instance]) -> None:
        if not self._done:
            self._pending = dict(instances)
            self._wakeup.set()

    def _end(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._error = error
            self._discovery._subscribers.discard(self)
        self._wakeup.set()


class Discovery:
    """A live view of the instances registered under *service*.

    ``async with client.discover("my-service") as d:`` reads ``my-service/``
    once (revision R) before the body runs, then follows it with a watch from
    R + 1 in a background task owned by the discovery (stopped on exit):

    * ``d.instances`` is the current ``dict[str, Instance]``, keyed by addr
      (a copy; if two keys carry the same ``Addr``, the last key in byte order
      wins); ``d.revision`` the revision it reflects.
    * ``async for instances in d.updates():`` yields a new set each time it
      changes, starting with the current one (see :class:`DiscoveryUpdates`).
    * Values that are not valid endpoint JSON are skipped with a warning (a
      key keeps its previous instance, as in Go).
    * The watch resumes across reconnects; if it fell behind a compaction the
      prefix is read again and the set corrected (logged at info level), so
      there is never a silent gap. The machinery is :class:`ConfigMirror`'s.

    Unlike Go's resolver, which watches the bare service name as a prefix
    (so ``svc`` also sees ``svc2/...``), only keys under ``<service>/`` count.
    """

    def __init__(self, client: RecipeClient, service: str | bytes) -> None:
        self.client = client
        self.service = service
        self.prefix = to_key(service, "service") + b"/"
        self._mirror = ConfigMirror(client, self.prefix, decode=decode_endpoint)
        self._mirror._name = f"discovery of {self.prefix!r}"
        self._mirror._on_batch = self._on_batch
        self._mirror._on_stop = self._on_stop
        self._instances: dict[str, Instance] = {}
        self._subscribers: set[DiscoveryUpdates] = set()

    def __repr__(self) -> str:
        return (
            f"<aetcd.recipes.Discovery {self.prefix!r} instances={len(self._instances)} "
            f"revision={self.revision}>"
        )

    @property
    def instances(self) -> dict[str, Instance]:
        """The current instances, addr -> :class:`Instance` (a copy)."""
        return dict(self._instances)

    @property
    def revision(self) -> int:
        """The revision the view reflects."""
        return self._mirror.revision

    def updates(self) -> DiscoveryUpdates:
        """Subscribe to the instance set: the current one, then each new one."""
        if not self._mirror._open:
            raise RuntimeError("the discovery is not open: use `async with`")
        subscriber = DiscoveryUpdates(self)
        self._subscribers.add(subscriber)
        return subscriber

    async def wait_for(self, revision: int, *, timeout: float | None = None) -> None:
        """Return once the view reflects *revision* (see :meth:`ConfigMirror.wait_for`)."""
        await self._mirror.wait_for(to_int(revision, "revision"), timeout=timeout)

    async def __aenter__(self) -> Self:
        await self._mirror.__aenter__()
        self._instances = self._compute()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._mirror.__aexit__(exc_type, exc, tb)

    def _compute(self) -> dict[str, Instance]:
        mirror = self._mirror
        return {mirror[key].addr: mirror[key] for key in sorted(mirror, key=str.encode)}

    def _on_stop(self, error: BaseException | None) -> None:
        for subscriber in list(self._subscribers):
            subscriber._end(error)

    def _on_batch(self, changes: list[ConfigChange]) -> None:
        instances = self._compute()
        if instances == self._instances:
            return
        self._instances = instances
        for subscriber in list(self._subscribers):
            subscriber._push(instances)
