"""The Watch facade: many watches multiplexed on one shared Watch stream.

This module is the consumer side (:class:`Watch`: iterate, ``async with``,
``cancel``, ``revision``, ``responses()``); the shared stream, its reconnect
loop and each watch's per-incarnation state are in ``aetcd._watch_stream``,
which calls a watch only through its private hooks.

Guarantees, across reconnects too:

* **Nothing skipped, repeated or reordered.** Each watch remembers the revision
  it must resume from (the last delivered event's revision + 1, or the
  creation revision + 1). When the stream breaks (server restart, network,
  another endpoint) every watch is re-created from there, and a defensive
  filter drops anything older than that point.
* **Compaction is loud.** If the resume point was compacted, the iterator
  raises :class:`aetcd.CompactedError` after delivering what it buffered.
* **Bounded memory.** A consumer that stops reading does not grow the client's
  memory without bound nor stall the other watches: once its buffer holds
  ``max_buffer`` events the watch is cancelled on the server, and re-created
  from its resume point once the consumer has caught up.
* **Confirmed creation.** ``async with client.watch(...)`` returns only once
  the server has confirmed the watch, so no write made after entry is missed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self

from ._channel import Transport
from ._keys import to_int
from ._watch_stream import WatchStream
from ._wire import messages as pb
from ._wire.decode import event_view, event_view_of, header_view
from ._wire.namespace import Namespace
from .errors import (
    DeadlineExceededError,
)
from .ops import _key_range
from .types import Event, WatchFilter, WatchResponse

__all__ = ["Watch", "WatchAPI"]

log = logging.getLogger("aetcd")

#: A buffered batch: the response it came in (for its header), its events
#: (protobuf), the revision of the last one, and for a batch of one event (the
#: common case under load) that event's view, built by the stream task from
#: the sub-messages it read anyway (``None`` for larger batches: their views
#: are built one by one as they are delivered).
_Batch = tuple[pb.WatchResponse, Sequence[Any], int, Event | None]

#: Default number of undelivered events a watch may hold before it is paused.
DEFAULT_MAX_BUFFER: Final = 10_000


class WatchAPI:
    """Watch operations of :class:`aetcd.Client` (etcd's Watch service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        #: The client's namespace, or None.
        self._ns = Namespace.of(transport.config)
        self._watch_stream: WatchStream | None = None

    async def aclose(self) -> None:
        """End the shared stream; watches still open raise ClientClosedError."""
        stream = self._watch_stream
        if stream is not None:
            await stream.close()

    def watch(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        progress_notify: bool = False,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> Watch:
        """Watch one key, a prefix, a range, or every key from *key* on.

        ``start_revision`` 0 means "changes after now"; a past revision replays
        history from it (a compacted one raises :class:`aetcd.CompactedError`
        from the iterator). ``prev_kv=True`` adds each key's previous value,
        ``filters`` drops PUT or DELETE events on the server, and
        ``progress_notify=True`` asks for periodic empty responses that advance
        the resume point of a quiet watch.

        Use ``async with client.watch(...) as watch: async for event in
        watch: ...`` (the ``async with`` returns once the server confirmed the
        watch), or a bare ``async for event in client.watch(...)``. Arguments
        are checked here, before any I/O.
        """
        k, end = _key_range(key, prefix, range_end, from_key)
        ns = self._ns
        if ns is not None:
            k, end = ns.key_range(k, end)
        rev = to_int(start_revision, "start_revision")
        if type(prev_kv) is not bool or type(progress_notify) is not bool:
            raise TypeError("prev_kv and progress_notify must be bool")
        fs: list[int] = []
        for f in filters:
            if not isinstance(f, WatchFilter):
                raise TypeError(f"filters must hold aetcd.WatchFilter values, not {f!r}")
            fs.append(int(f))
        buf = to_int(max_buffer, "max_buffer", minimum=1)
        return Watch(self, k, end, rev, prev_kv, fs, progress_notify, buf)

    async def request_progress(self) -> None:
        """Ask the server for a progress notification on every watch of this client.

        Each watch's ``responses()`` then yields an empty response whose header
        revision says how far the watch has been delivered. Does nothing when
        the client has no watch.
        """
        stream = self._watch_stream
        if stream is not None:
            stream.send(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))

    def _watch_stream_for(self) -> WatchStream:
        stream = self._watch_stream
        if stream is None or stream.closed:
            stream = WatchStream(self._t)
            self._watch_stream = stream
        return stream


class Watch:
    """One watch: an async iterator of :class:`aetcd.Event` and an async context manager.

    ``revision`` is the revision up to which everything has been delivered.
    Leaving ``async with``, :meth:`cancel`, or cancelling the consuming task
    removes the watch on the server. Errors (compaction, permission denied,
    client closed) are raised from the iterator after the events buffered
    before them.
    """

    _loop: asyncio.AbstractEventLoop  # set by start(), which comes before any wait

    def __init__(
        self,
        api: WatchAPI,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        prev_kv: bool,
        filters: list[int],
        progress_notify: bool,
        max_buffer: int,
    ) -> None:
        self._api = api
        self._ns = api._ns
        self.key = key
        self.range_end = range_end
        self.start_revision = start_revision
        self._prev_kv = prev_kv
        self._filters = filters
        self._progress_notify = progress_notify
        self._max_buffer = max_buffer
        self._low_water = max_buffer // 2
        #: the revision the watch resumes from (0 until the server confirmed it)
        self.next_revision = start_revision
        #: everything up to this revision has been delivered
        self.revision = max(start_revision - 1, 0)
        self._stream: WatchStream | None = None
        self._created: asyncio.Future[None] | None = None
        # Undelivered responses, oldest first: batches of events as the server
        # sent them (protobuf, decoded only when delivered), and progress
        # notifications.
        self._buffer: collections.deque[_Batch | WatchResponse] = collections.deque()
        self._buffered_events = 0
        # The batch of several events being delivered one by one, its length, and
        # the index of the next one (a batch of one event never gets here).
        self._batch: Sequence[Any] = ()
        self._batch_len = 0
        self._index = 0
        # Futures of consumers waiting for the buffer to fill: created only when
        # someone actually waits, so the stream task wakes nobody otherwise.
        self._waiters: list[asyncio.Future[None]] = []
        self._error: BaseException | None = None
        self._done = False
        self._paused = False
        #: how often the watch was paused on the server for a slow consumer
        self.pauses = 0
        # id of the server-side incarnation, if any (set by the stream)
        self.watch_id = 0

    def __repr__(self) -> str:
        state = "done" if self._done else "paused" if self._paused else "active"
        return f"<aetcd.Watch key={self.key!r} revision={self.revision} {state}>"

    # -- lifecycle ---------------------------------------------------------------

    async def start(self, timeout: float | None = None) -> None:
        """Create the watch on the server and wait for its confirmation.

        Raises :class:`aetcd.DeadlineExceededError` if the server does not
        confirm within *timeout* (default: the client's), and the error of a
        refused watch (e.g. :class:`aetcd.PermissionDeniedError`).
        """
        if self._created is None:
            self._loop = asyncio.get_running_loop()
            self._created = self._loop.create_future()
            stream = self._api._watch_stream_for()
            self._stream = stream
            await stream.add(self)
        t = self._api._t.deadline(timeout)
        try:
            async with asyncio.timeout(t):
                await asyncio.shield(self._created)
        except TimeoutError:
            await self.cancel()
            raise DeadlineExceededError(
                f"the server did not confirm the watch within {t} s"
            ) from None
        except BaseException:
            await self.cancel()
            raise

    async def cancel(self) -> None:
        """Remove the watch; the iterator ends after what it already buffered."""
        self._finish(None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(None)

    # -- consuming ---------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        # The hot path of every watch: kept in one frame (no helper coroutine per
        # event or per batch). A batch of one event (the usual case under load)
        # comes with its view already built; larger ones are decoded event by
        # event as they are delivered.
        i = self._index
        if i < self._batch_len:
            batch = self._batch
            self._index = i = i + 1
            if i == self._batch_len:
                self._batch = ()  # do not keep the response alive
                self._batch_len = 0
            event = event_view(batch[i - 1])
            return event if self._ns is None else self._ns.event(event)
        buffer = self._buffer
        while True:
            if buffer:
                item = buffer.popleft()
                if type(item) is tuple:
                    break
                self._take_progress(item)  # type: ignore[arg-type]
                continue
            if self._done or self._created is None:
                await self._wait()
                continue
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._forget_waiter(waiter)
                raise
        _, batch, self.revision, view = item
        if view is not None:
            event = view
            self._buffered_events -= 1
        else:
            n = len(batch)
            self._buffered_events -= n
            self._batch = batch
            self._batch_len = n
            self._index = 1
            event = event_view(batch[0])
        if self._paused:
            self._resume_if_drained()
        return event if self._ns is None else self._ns.event(event)

    async def responses(self) -> AsyncGenerator[WatchResponse, None]:
        """Yield whole responses (batches of events, and progress notifications)."""
        if self._index < self._batch_len:
            raise RuntimeError("responses() cannot be mixed with iterating events")
        buffer = self._buffer
        while True:
            while not buffer:
                try:
                    await self._wait()
                except StopAsyncIteration:
                    return
            item = buffer.popleft()
            if isinstance(item, WatchResponse):
                self._take_progress(item)
                yield item
                continue
            events = [event_view(e) for e in self._take(item)]
            ns = self._ns
            if ns is not None:
                events = [ns.event(e) for e in events]
            yield WatchResponse(header_view(item[0].header), events)

    async def _wait(self) -> None:
        """Wait until something is buffered; raise how the watch ended once it has."""
        if self._created is None:
            await self.start()
            return
        if self._done:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopAsyncIteration
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            self._forget_waiter(waiter)
            raise

    def _forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        # A cancelled consumer leaves no future behind (a consumer that polls
        # with timeouts on a quiet watch would otherwise grow the list).
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _wake(self) -> None:
        """Wake every consumer waiting for the buffer (each takes what it finds)."""
        waiters = self._waiters
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        waiters.clear()

    def _take(self, batch: _Batch) -> Sequence[Any]:
        """Account for a batch leaving the buffer (as ``__anext__`` does inline)."""
        _, events, self.revision, _ = batch
        self._buffered_events -= len(events)
        if self._paused:
            self._resume_if_drained()
        return events

    def _resume_if_drained(self) -> None:
        """Re-create a watch paused for a slow consumer once it has caught up."""
        if self._buffered_events <= self._low_water and self._stream:
            self._paused = False
            self._stream.create(self)

    def _take_progress(self, response: WatchResponse) -> None:
        if response.header.revision > self.revision:
            self.revision = response.header.revision

    # -- the stream's hooks (aetcd._watch_stream.Subscriber) -----------------------

    def _create_request(self, watch_id: int) -> pb.WatchRequest:
        return pb.WatchRequest(
            create_request=pb.WatchCreateRequest(
                key=self.key,
                range_end=self.range_end,
                start_revision=self.next_revision,
                progress_notify=self._progress_notify,
                filters=self._filters,  # type: ignore[arg-type]
                prev_kv=self._prev_kv,
                watch_id=watch_id,
                fragment=True,
            )
        )

    def _on_created(self, header: pb.ResponseHeader) -> None:
        if self.next_revision == 0:
            # Watching "from now": everything after the creation revision is ours.
            self.next_revision = header.revision + 1
            self.revision = header.revision
        if self._created is not None and not self._created.done():
            self._created.set_result(None)

    def _on_events(self, response: pb.WatchResponse, events: Sequence[Any]) -> bool:
        """Buffer a whole batch; returns False when the watch must be paused."""
        floor = self.next_revision
        n = len(events)
        if n == 1:
            # The common case under load, read once: the sub-messages read here
            # make the event's view (a protobuf sub-message read is a new Python
            # object each time).
            message = events[0]
            kv = message.kv
            last = kv.mod_revision
            if last < floor:
                return True  # defensive: never deliver anything twice
            item: _Batch = (response, events, last, event_view_of(message, kv))
        else:
            first = events[0].kv.mod_revision
            if first < floor:
                # Defensive: never deliver anything before the resume point twice.
                events = [e for e in events if e.kv.mod_revision >= floor]
                if not events:
                    return True
                n = len(events)
            last = events[-1].kv.mod_revision if n > 1 else events[0].kv.mod_revision
            item = (response, events, last, None)
        self.next_revision = last + 1
        self._buffer.append(item)
        buffered = self._buffered_events = self._buffered_events + n
        if self._waiters:
            self._wake()
        if buffered >= self._max_buffer:
            self._paused = True
            self.pauses += 1
            return False
        return True

    def _on_progress(self, header: pb.ResponseHeader) -> None:
        rev = header.revision
        if rev >= self.next_revision:
            self.next_revision = rev + 1
        self._buffer.append(WatchResponse(header_view(header), []))
        self._wake()

    def _on_broadcast_progress(self, header: pb.ResponseHeader, trusted: bool) -> None:
        # etcd < 3.5.8 may send a requested progress notification before the
        # watch caught up (etcd#15220): deliver it, but only move the resume
        # point when the server is known to get this right.
        if trusted and header.revision >= self.next_revision:
            self.next_revision = header.revision + 1
        if trusted:
            self._buffer.append(WatchResponse(header_view(header), []))
            self._wake()

    def _fail(self, error: BaseException) -> None:
        """End the watch with *error*, raised after the buffered events."""
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        if self._error is None and not self._done:
            self._error = error
        self._done = True
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.remove(self)
        if self._created is not None and not self._created.done():
            if error is not None:
                self._created.set_exception(error)
                self._created.exception()  # retrieved: start() re-raises it
            else:
                self._created.cancel()
        self._wake()
