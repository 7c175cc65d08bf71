"""ConfigMirror: a hot-reloaded, read-only local copy of every key under a prefix.

Like Go's ``mirror.Syncer``: one range read of the prefix at revision R, then a
watch from R + 1, so nothing written after the read is missed. The watch
resumes by itself across reconnects. If the history it must resume from was
compacted, the mirror reads the prefix again and turns the difference between
its old and new contents into changes, so subscribers still end up with the
right state (the intermediate steps in the compacted history are gone for
good; the re-read is logged at info level).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from .._backoff import Backoff
from .._keys import to_bytes, to_int
from ..errors import ClientClosedError, CompactedError, EtcdError
from ..types import EventType
from ._util import shielded

if TYPE_CHECKING:
    from ..types import Event
    from ._client import RecipeClient

__all__ = [
    "DEFAULT_MAX_PENDING",
    "ConfigChange",
    "ConfigChanges",
    "ConfigMirror",
    "SubscriberOverflowError",
]

log = logging.getLogger("aetcd")

#: Default number of undelivered changes a ``changes()`` subscriber may hold.
DEFAULT_MAX_PENDING: Final = 10_000

_RETRY_MIN: Final = 0.1  # pauses between attempts after an error, seconds
_RETRY_MAX: Final = 2.0


class SubscriberOverflowError(RuntimeError):
    """A ``changes()`` subscriber fell more than ``limit`` changes behind.

    Raised from its iterator after the changes it holds; later changes were
    not kept for it. The mirror itself is unaffected: read it (it is current)
    and subscribe again.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the subscriber fell more than {limit} changes behind; later changes were dropped"
        )
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One change of a mirrored key.

    ``key`` is relative to the prefix; ``value`` is the new (decoded) value, or
    ``None`` for a DELETE; ``revision`` is the etcd revision of the change.
    ``resync`` is True for changes computed by comparing two reads after the
    watch history was compacted: their ``revision`` is the revision of the
    new read, not of the (lost) original write.
    """

    type: EventType
    key: str
    value: Any
    revision: int
    resync: bool = False


class ConfigChanges:
    """One subscriber's ordered stream of :class:`ConfigChange` (``cfg.changes()``).

    An async iterator, and an async context manager that unsubscribes on exit
    (otherwise the subscription ends when the object is garbage-collected).
    The iterator ends when the mirror is closed, after the changes it holds;
    it raises :class:`SubscriberOverflowError` if more than ``max_pending``
    changes piled up unread, and the mirror's error if it gave up (client
    closed).
    """

    def __init__(self, mirror: ConfigMirror, max_pending: int) -> None:
        self._mirror = mirror
        self._max_pending = max_pending
        self._queue: collections.deque[ConfigChange] = collections.deque()
        self._wakeup = asyncio.Event()
        self._error: BaseException | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"<aetcd.recipes.ConfigChanges pending={len(self._queue)}>"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ConfigChange:
        queue = self._queue
        while not queue:
            if self._error is not None:
                error, self._error = self._error, None
                self._done = True
                raise error
            if self._done:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return queue.popleft()

    async def aclose(self) -> None:
        """Unsubscribe; the iterator ends after the changes already held."""
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

    def _push(self, changes: list[ConfigChange]) -> None:
        if self._done:
            return
        room = self._max_pending - len(self._queue)
        if len(changes) > room:
            # Keep what fits: the consumer gets every change up to the gap, then the error.
            self._queue.extend(changes[:room])
            self._end(SubscriberOverflowError(self._max_pending))
            return
        self._queue.extend(changes)
        self._wakeup.set()

    def _end(self, error: BaseException | None) -> None:
        if not self._done:
            self._error = error
            self._done = True
            self._mirror._subscribers.discard(self)
        self._wakeup.set()


class ConfigMirror(Mapping[str, Any]):
    """A read-only mapping mirroring every key under *prefix*, kept current by a watch.

    ``async with client.config("app/config/") as cfg:`` reads the prefix
    before the body runs; then ``cfg["db/url"]`` is the current value. Keys are
    relative to the prefix, as ``str``; values are ``bytes``, or
    ``decode(bytes)`` with ``decode=`` (e.g. ``json.loads``).

    * ``cfg.revision``: every change under the prefix up to this revision is
      applied. It advances only when something under the prefix changes (etcd
      sends no news about other keys), so :meth:`wait_for` the revision of a
      write under the prefix.
    * ``cfg.changes()``: an ordered stream of :class:`ConfigChange` for every
      change applied after the call; any number of subscribers, each with its
      own bounded queue.
    * Keys that are not valid UTF-8 are skipped, with a warning.
    * A value that ``decode`` rejects (any exception) is skipped with a
      warning: the key keeps its previous value (or stays absent) and no
      change is emitted; ``cfg.invalid`` maps such keys to the exception
      until a good value is written or the key is deleted.

    The background task (owned by the mirror, ended on exit) survives
    reconnects and compaction (see the module doc) and retries other errors
    with capped backoff, logging them. It gives up only if the client is
    closed: subscribers then get that error. Leaving the block (also by
    cancellation) stops it; the mapping keeps its last contents.
    """

    def __init__(
        self,
        client: RecipeClient,
        prefix: str | bytes,
        *,
        decode: Callable[[bytes], Any] | None = None,
    ) -> None:
        if decode is not None and not callable(decode):
            raise TypeError(f"decode must be callable, not {type(decode).__name__}")
        self.client = client
        self.prefix = to_bytes(prefix, "prefix")
        self._decode = decode
        self._name = f"config mirror {self.prefix!r}"  # for log lines
        self._data: dict[str, Any] = {}
        self._invalid: dict[str, Exception] = {}
        # Raw key -> mod revision of every key seen under the prefix (the diff base).
        self._raw: dict[bytes, int] = {}
        self._revision = 0
        self._advanced = asyncio.Event()
        self._subscribers: weakref.WeakSet[ConfigChanges] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None
        self._open = False
        self._failure: BaseException | None = None
        #: how many times the prefix was read again after compaction
        self.resyncs = 0
        # Called with each non-empty batch of applied changes (used by Discovery).
        self._on_batch: Callable[[list[ConfigChange]], None] | None = None
        # Called once when the mirror stops, with its error if it gave up.
        self._on_stop: Callable[[BaseException | None], None] | None = None

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return (
            f"<aetcd.recipes.ConfigMirror {self.prefix!r} keys={len(self._data)} "
            f"revision={self._revision} {state}>"
        )

    # -- Mapping -------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # -- state ---------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The revision the mirror reflects (0 before it is open)."""
        return self._revision

    @property
    def invalid(self) -> Mapping[str, Exception]:
        """Keys whose current stored value ``decode`` rejected, with the error."""
        return dict(self._invalid)

    async def wait_for(self, revision: int, *, timeout: float | None = None) -> None:
        """Return once :attr:`revision` >= *revision* (e.g. the revision of your own put).

        Raises ``TimeoutError`` after *timeout* seconds, ``RuntimeError`` if the
        mirror is not open or is closed meanwhile, and the mirror's error if
        it gave up.
        """
        target = to_int(revision, "revision")
        async with asyncio.timeout(timeout):
            asked = False
            while self._revision < target:
                if self._failure is not None:
                    raise self._failure
                if not self._open:
                    raise RuntimeError(f"the {self._name} is not open")
                if not asked:
                    # etcd >= 3.5.8 then reports progress past writes elsewhere.
                    asked = True
                    await self.client.request_progress()
                await self._advanced.wait()

    def changes(self, *, max_pending: int = DEFAULT_MAX_PENDING) -> ConfigChanges:
        """Subscribe to every change applied from now on, in revision order.

        ``async for change in cfg.changes():`` (or ``async with cfg.changes() as
        changes:``). The subscriber holds at most *max_pending* undelivered
        changes; past that its iterator raises :class:`SubscriberOverflowError`
        (memory stays bounded however slow it is).
        """
        limit = to_int(max_pending, "max_pending", minimum=1)
        if not self._open:
            raise RuntimeError(f"the {self._name} is not open: use `async with`")
        subscriber = ConfigChanges(self, limit)
        self._subscribers.add(subscriber)
        return subscriber

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._open:
            raise RuntimeError(f"this {self._name} is already open")
        self._failure = None
        await self._resync(initial=True)
        self._open = True
        self._task = asyncio.create_task(self._run(), name=f"aetcd {self._name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failure = await shielded(self._close(), None)
        if failure is not None and exc_type is None:
            raise failure

    async def _close(self) -> BaseException | None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._stop(None)
        failure = self._failure
        return None if isinstance(failure, ClientClosedError) else failure

    def _stop(self, error: BaseException | None) -> None:
        self._open = False
        for subscriber in list(self._subscribers):
            subscriber._end(error)
        if self._on_stop is not None:
            self._on_stop(error)
        self._wake()

    # -- the background task ---------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(_RETRY_MIN, _RETRY_MAX)
        try:
            while True:
                try:
                    await self._follow()
                    error: EtcdError | None = None  # the watch ended: start it again
                except CompactedError as exc:
                    log.info(
                        "%s: history compacted up to %d before the watch caught up "
                        "(it was at %d); reading the prefix again",
                        self._name,
                        exc.compact_revision,
                        self._revision,
                    )
                    await self._retry(self._resync)
                    backoff.reset()
                    continue
                except ClientClosedError:
                    raise
                except EtcdError as exc:
                    error = exc
                pause = backoff.next()
                log.warning(
                    "%s: the watch failed (%s); watching again from revision %d in %.1f s",
                    self._name,
                    error or "ended",
                    self._revision + 1,
                    pause,
                )
                await asyncio.sleep(pause)
        except ClientClosedError as exc:
            log.warning("%s: the client was closed; the mirror stops", self._name)
            self._fail(exc)
        except Exception as exc:
            log.exception("%s: background task failed", self._name)
            self._fail(exc)

    async def _follow(self) -> None:
        """Watch from the mirror's revision + 1 and apply each batch of events."""
        async with self.client.watch(
            self.prefix, prefix=True, start_revision=self._revision + 1
        ) as watch:
            async for response in watch.responses():
                changes: list[ConfigChange] = []
                for event in response.events:
                    change = self._apply_event(event)
                    if change is not None:
                        changes.append(change)
                # Not the header revision: with a long backlog etcd sends a newer
                # header than the events it carries.
                self._publish(changes, watch.revision)

    async def _retry(self, step: Callable[[], Any]) -> None:
        backoff = Backoff(_RETRY_MIN, _RETRY_MAX)
        while True:
            try:
                await step()
                return
            except ClientClosedError:
                raise
            except EtcdError as exc:
                pause = backoff.next()
                log.warning("%s: %s; retrying in %.1f s", self._name, exc, pause)
                await asyncio.sleep(pause)

    async def _resync(self, *, initial: bool = False) -> None:
        """Read the whole prefix and apply the difference to the current contents."""
        res = await self.client.get(self.prefix, prefix=True)
        revision = res.header.revision
        fresh = {kv.key: kv for kv in res.kvs}
        changes: list[ConfigChange] = []
        for key in sorted(self._raw.keys() - fresh.keys()):
            change = self._apply(EventType.DELETE, key, b"", 0, revision, resync=True)
            if change is not None:
                changes.append(change)
        for kv in res.kvs:
            if self._raw.get(kv.key) != kv.mod_revision:
                change = self._apply(
                    EventType.PUT, kv.key, kv.value, kv.mod_revision, revision, resync=True
                )
                if change is not None:
                    changes.append(change)
        if not initial:
            self.resyncs += 1
            log.info(
                "%s: read the prefix again at revision %d: %d keys, %d changes",
                self._name,
                revision,
                len(fresh),
                len(changes),
            )
        self._publish(changes, revision)

    # -- applying changes ------------------------------------------------------------

    def _apply_event(self, event: Event) -> ConfigChange | None:
        kv = event.kv
        return self._apply(event.type, kv.key, kv.value, kv.mod_revision, kv.mod_revision)

    def _apply(
        self,
        kind: EventType,
        raw_key: bytes,
        value: bytes,
        mod_revision: int,
        revision: int,
        *,
        resync: bool = False,
    ) -> ConfigChange | None:
        """Apply one PUT or DELETE; return the change subscribers see, if any."""
        try:
            key = raw_key[len(self.prefix) :].decode()
        except UnicodeDecodeError:
            if kind is EventType.PUT and raw_key not in self._raw:
                log.warning("%s: skipping key %r: not valid UTF-8", self._name, raw_key)
            if kind is EventType.PUT:
                self._raw[raw_key] = mod_revision
            else:
                self._raw.pop(raw_key, None)
            return None
        if kind is EventType.DELETE:
            self._raw.pop(raw_key, None)
            self._invalid.pop(key, None)
            if key not in self._data:
                return None  # it never had a visible value
            del self._data[key]
            return ConfigChange(EventType.DELETE, key, None, revision, resync)
        self._raw[raw_key] = mod_revision
        decoded: Any = value
        if self._decode is not None:
            try:
                decoded = self._decode(value)
            except Exception as exc:  # a user callback: never let it kill the mirror
                log.warning(
                    "%s: cannot decode the value of %r at revision %d (%r); keeping %s",
                    self._name,
                    key,
                    mod_revision,
                    exc,
                    "the previous value" if key in self._data else "it absent",
                )
                self._invalid[key] = exc
                return None
        self._invalid.pop(key, None)
        self._data[key] = decoded
        return ConfigChange(EventType.PUT, key, decoded, revision, resync)

    def _publish(self, changes: list[ConfigChange], revision: int) -> None:
        if changes:
            for subscriber in list(self._subscribers):
                subscriber._push(changes)
            if self._on_batch is not None:
                self._on_batch(changes)
        if revision > self._revision:
            self._revision = revision
            self._wake()

    def _wake(self) -> None:
        self._advanced.set()
        self._advanced = asyncio.Event()

    def _fail(self, error: BaseException) -> None:
        self._failure = error
        self._stop(error)
