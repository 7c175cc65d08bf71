"""The Watch facade: many watches multiplexed on one shared Watch stream.

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
import dataclasses
import itertools
import logging
import re
import weakref
from collections.abc import AsyncGenerator, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self

import grpc
import grpc.aio

from ._channel import State, Transport
from ._keys import to_int
from ._pb import rpc_pb2
from .errors import (
    AuthenticationError,
    ClientClosedError,
    CompactedError,
    DeadlineExceededError,
    EtcdError,
    PermissionDeniedError,
    WatchCanceledError,
    from_grpc,
    from_message,
)
from .ops import key_range, ns_range
from .types import (
    Event,
    ResponseHeader,
    WatchFilter,
    WatchResponse,
    _event_view,
    _event_view_of,
)

__all__ = ["Watch", "WatchAPI"]

log = logging.getLogger("aetcd")

#: A buffered batch: the response it came in (for its header), its events
#: (protobuf), the revision of the last one, and for a batch of one event (the
#: common case under load) that event's view, built by the stream task from
#: the sub-messages it read anyway (``None`` for larger batches: their views
#: are built one by one as they are delivered).
_Batch = tuple[rpc_pb2.WatchResponse, Sequence[Any], int, Event | None]

#: Default number of undelivered events a watch may hold before it is paused.
DEFAULT_MAX_BUFFER: Final = 10_000

_COMPACTED_MESSAGE: Final = "etcdserver: mvcc: required revision has been compacted"
_RETRY_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_BACKOFF_MIN: Final = 0.01
_BACKOFF_MAX: Final = 1.0


class WatchAPI:
    """Watch operations of :class:`aetcd.Client` (etcd's Watch service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self._watch_stream: _WatchStream | None = None

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
        k, end = key_range(key, prefix, range_end, from_key)
        ns = self._t.config.namespace
        if ns:
            k, end = ns_range(ns, k, end)
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
            stream.send(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))

    def _watch_stream_for(self) -> _WatchStream:
        stream = self._watch_stream
        if stream is None or stream.closed:
            stream = _WatchStream(self._t)
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
        self._ns = len(api._t.config.namespace)
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
        self._stream: _WatchStream | None = None
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
        self._fragments: list[Any] = []
        self._token_retried = False  # a refusal was retried with a fresh token
        #: how often the watch was paused on the server for a slow consumer
        self.pauses = 0
        # id and stream generation of the server-side incarnation, if any
        self.watch_id = 0
        self._generation = -1

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
            event = _event_view(batch[i - 1])
            return _strip(event, self._ns) if self._ns else event
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
            event = _event_view(batch[0])
        if self._paused:
            self._resume_if_drained()
        return _strip(event, self._ns) if self._ns else event

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
            events = [Event.from_pb(e) for e in self._take(item)]
            if self._ns:
                events = [_strip(e, self._ns) for e in events]
            yield WatchResponse(ResponseHeader.from_pb(item[0].header), events)

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

    # -- called by the stream ----------------------------------------------------

    def create_request(self, watch_id: int) -> rpc_pb2.WatchRequest:
        self.watch_id = watch_id
        self._fragments = []
        return rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(
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

    def on_created(self, header: rpc_pb2.ResponseHeader) -> None:
        if self.next_revision == 0:
            # Watching "from now": everything after the creation revision is ours.
            self.next_revision = header.revision + 1
            self.revision = header.revision
        if self._created is not None and not self._created.done():
            self._created.set_result(None)

    def on_events(self, response: rpc_pb2.WatchResponse, events: Sequence[Any]) -> bool:
        """Buffer a whole batch; returns False when the watch must be paused."""
        floor = self.next_revision
        n = len(events)
        if n == 1:
            # The common case under load, read once: the sub-messages read here
            # make the event's view (a protobuf sub-message read is a new Python
            # object each time).
            pb = events[0]
            kv = pb.kv
            last = kv.mod_revision
            if last < floor:
                return True  # defensive: never deliver anything twice
            item: _Batch = (response, events, last, _event_view_of(pb, kv))
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

    def on_progress(self, header: rpc_pb2.ResponseHeader) -> None:
        rev = header.revision
        if rev >= self.next_revision:
            self.next_revision = rev + 1
        self._buffer.append(WatchResponse(ResponseHeader.from_pb(header), []))
        self._wake()

    def on_broadcast_progress(self, header: rpc_pb2.ResponseHeader, trusted: bool) -> None:
        # etcd < 3.5.8 may send a requested progress notification before the
        # watch caught up (etcd#15220): deliver it, but only move the resume
        # point when the server is known to get this right.
        if trusted and header.revision >= self.next_revision:
            self.next_revision = header.revision + 1
        if trusted:
            self._buffer.append(WatchResponse(ResponseHeader.from_pb(header), []))
            self._wake()

    def fail(self, error: BaseException) -> None:
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


class _WatchStream:
    """The one bidirectional Watch stream of a client, and its reconnect loop.

    Owns one background task (``client.close()`` ends it, through
    :meth:`WatchAPI.aclose`). Watch ids are chosen here, a fresh one for
    every server-side incarnation of a watch, so late responses of an old
    incarnation can never be mistaken for a new one.

    The task reads every response and appends it, still protobuf, to its
    watch's buffer; a consumer's task is woken only if it is waiting (one
    future per wait). That wake-up is the one cost a shared stream adds to a
    bare ``async for response in call`` loop: a consumer cannot read the call
    itself, because cancelling a task blocked in a grpc.aio read cancels the
    whole call, and with it every watch on the stream.
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self._watches: weakref.WeakSet[Watch] = weakref.WeakSet()
        # Watch id -> weak reference to its watch. A plain dict of references
        # (each removes its own entry when its watch is collected) rather than
        # a WeakValueDictionary, whose Python-level get() the hot path would pay
        # for every response.
        self._by_id: dict[int, weakref.ref[Watch]] = {}
        self._cancelling: set[int] = set()
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[rpc_pb2.WatchRequest] = asyncio.Queue()
        self._generation = 0
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._trust_requested_progress: bool | None = None
        self.closed = False
        self.streams_opened = 0

    # -- registry ------------------------------------------------------------------

    async def add(self, watch: Watch) -> None:
        if self.closed or self._t.state is State.CLOSED:
            raise ClientClosedError("the client is closed; create a new aetcd.Client")
        if self._task is None:
            await self._t.open()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="aetcd-watch-stream"
            )
        self._watches.add(watch)
        if self._connected:
            self.create(watch)

    def create(self, watch: Watch) -> None:
        """Create (or re-create) *watch* on the current stream, from its resume point."""
        if not self._connected or watch._done:
            return
        wid = next(self._ids)
        watch._generation = self._generation
        ids = self._by_id

        def forget(ref: weakref.ref[Watch]) -> None:
            if ids.get(wid) is ref:
                del ids[wid]

        ids[wid] = weakref.ref(watch, forget)
        self.send(watch.create_request(wid))

    def remove(self, watch: Watch) -> None:
        self._watches.discard(watch)
        self._cancel_id(watch.watch_id, watch)

    def _cancel_id(self, wid: int, watch: Watch | None) -> None:
        if watch is not None and self._watch_of(wid) is watch:
            del self._by_id[wid]
        if wid and self._connected and wid not in self._cancelling:
            self._cancelling.add(wid)
            self.send(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=wid)))

    def _watch_of(self, wid: int) -> Watch | None:
        ref = self._by_id.get(wid)
        return None if ref is None else ref()

    def send(self, request: rpc_pb2.WatchRequest) -> None:
        if self._connected:
            self._queue.put_nowait(request)

    async def close(self) -> None:
        """End the stream task; watches still open raise ClientClosedError."""
        self.closed = True
        task, self._task = self._task, None
        if task is not None:
            # Cancelled, not half-closed: etcd keeps a watch stream open after
            # the client's half-close, so waiting for its end would only cost a
            # grace period. Transport.close() lets gRPC deliver the cancelled
            # call's last events before it returns.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        error = ClientClosedError("the client was closed while this watch was open")
        for watch in list(self._watches):
            watch.fail(error)

    # -- the reconnect loop ----------------------------------------------------------

    async def _run(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            try:
                await self._serve_one_stream()
                if self.closed:
                    return  # we hung up
                backoff = _BACKOFF_MIN
                log.info("aetcd: watch stream ended by the server; reconnecting")
            except asyncio.CancelledError:
                raise
            except _StaleToken as exc:
                log.info("aetcd: watch refused (%s); reopening with a fresh token", exc)
                try:
                    await self._t.refresh_token()
                except EtcdError as auth_error:
                    self._fail_all(auth_error)
                    return
                continue  # at once: this is not a failing server
            except EtcdError as exc:  # from the transport, before the stream opened
                if self.closed:
                    return
                if not exc.retryable:
                    log.warning("aetcd: watch stream cannot open: %r", exc)
                    self._fail_all(exc)
                    return
                log.info("aetcd: watch stream cannot open (%s); retrying", exc)
                self._t.note_trouble()
            except Exception as exc:
                if self.closed:
                    return  # failures while hanging up are expected
                if not isinstance(exc, grpc.aio.AioRpcError):
                    log.exception("aetcd: watch stream crashed")
                    self._fail_all(exc)
                    return
                error = from_grpc(exc)
                if isinstance(error, AuthenticationError) and error.retryable:
                    try:
                        await self._t.refresh_token()
                    except EtcdError as auth_error:
                        self._fail_all(auth_error)
                        return
                elif exc.code() not in _RETRY_CODES and not error.retryable:
                    log.warning("aetcd: watch stream failed: %r", error)
                    self._fail_all(error)
                    return
                log.info("aetcd: watch stream broke (%s); resuming every watch", error)
                self._t.note_trouble()  # guard unary calls with hasleader for a while
            finally:
                self._connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _serve_one_stream(self) -> None:
        metadata = await self._t.stream_metadata()
        if self._trust_requested_progress is None:
            self._trust_requested_progress = await self._server_fixed_progress()
        call = self._t.watch.Watch(metadata=metadata, wait_for_ready=True)
        self._call = call
        self.streams_opened += 1
        self._generation += 1
        self._queue = asyncio.Queue()
        self._by_id.clear()
        self._cancelling.clear()
        self._connected = True
        self._create_all()
        writer = asyncio.get_running_loop().create_task(self._write(call), name="aetcd-watch-send")
        dispatch = self._dispatch
        try:
            # ``async for`` rather than ``read()``: grpc.aio's read() adds a
            # state check and a coroutine frame to every message.
            responses: Any = call.__aiter__()
            async with contextlib.aclosing(responses):
                async for response in responses:
                    dispatch(response)
                    if writer.done():
                        writer.result()  # re-raise a write failure
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await writer
            call.cancel()

    def _create_all(self) -> None:
        # A method of its own: a loop variable in the long-lived stream coroutine
        # would keep the last watch alive and defeat garbage collection.
        for watch in list(self._watches):
            if not watch._paused and not watch._done:
                self.create(watch)

    async def _write(self, call: Any) -> None:
        queue = self._queue
        while True:
            request = await queue.get()
            try:
                await call.write(request)
            except asyncio.InvalidStateError:
                # The server already ended the stream (e.g. "no leader" right after
                # it opened): the reader gets its status and reports why.
                return

    async def _server_fixed_progress(self) -> bool:
        """Whether the server's requested progress notifications are safe (>= 3.5.8)."""
        try:
            status = await self._t.unary(
                self._t.maintenance.Status, rpc_pb2.StatusRequest(), None, write=False
            )
        except EtcdError:
            return False
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", status.version)
        if not match:
            return False
        return tuple(int(x) for x in match.groups()) >= (3, 5, 8)

    def _dispatch(self, r: rpc_pb2.WatchResponse) -> None:
        # Events for a live watch, whole (not a fragment): the one case that
        # happens per response under load, checked first and with as few
        # protobuf field reads as possible. Everything else is _control().
        ref = self._by_id.get(r.watch_id)
        if ref is not None:
            watch = ref()
            if watch is not None and not watch._fragments:
                events = r.events
                if events and not (r.fragment or r.canceled or r.compact_revision):
                    if not watch.on_events(r, events):
                        # The consumer is behind: stop this watch on the server
                        # until it catches up, then re-create it from its
                        # resume point.
                        self._cancel_id(r.watch_id, watch)
                    return
        self._control(r)

    def _control(self, r: rpc_pb2.WatchResponse) -> None:
        """Handle a response other than a plain batch of events."""
        wid = r.watch_id
        if wid == -1 and not r.created:
            trusted = bool(self._trust_requested_progress)
            for each in list(self._watches):
                if each._generation == self._generation and not each._paused:
                    each.on_broadcast_progress(r.header, trusted)
            return
        watch = self._watch_of(wid)
        if watch is None:
            self._by_id.pop(wid, None)  # its watch was collected a moment ago
            if r.canceled:
                self._cancelling.discard(wid)
            elif wid not in self._cancelling and not r.created:
                # A watch nobody holds any more (garbage-collected): stop it.
                self._cancel_id(wid, None)
            return
        if r.created:
            if r.canceled:
                del self._by_id[wid]
                error = from_message(r.cancel_reason, WatchCanceledError)
                if (
                    isinstance(error, PermissionDeniedError | AuthenticationError)
                    and self._t.config.username is not None
                    and not watch._token_retried
                ):
                    # etcd < 3.6 checks a watch against the token the *stream* was
                    # opened with, and answers "permission denied" once that token
                    # expired or its member restarted (P1, etcd#12385): reopen the
                    # stream with a fresh token and try once more before failing.
                    watch._token_retried = True
                    raise _StaleToken(error.message)
                watch.fail(error)
            else:
                watch._token_retried = False
                watch.on_created(r.header)
            return
        if r.canceled or r.compact_revision:
            # The server stops delivering to this watch, but etcd keeps a
            # compacted watcher registered until it is cancelled: cancel it
            # (once; as Go's clientv3 does for every watcher it closes).
            self._cancel_id(wid, watch)
            if r.compact_revision:
                watch.fail(
                    CompactedError(
                        _COMPACTED_MESSAGE,
                        compact_revision=r.compact_revision,
                    )
                )
            else:
                reason = r.cancel_reason or "etcdserver: watch canceled"
                watch.fail(from_message(reason, WatchCanceledError))
            return
        events: Sequence[Any] = r.events
        if r.fragment:
            watch._fragments.extend(events)
            return
        if watch._fragments:
            events = [*watch._fragments, *events]
            watch._fragments = []
        if events:
            if not watch.on_events(r, events):
                self._cancel_id(wid, watch)
        else:
            watch.on_progress(r.header)

    def _fail_all(self, error: BaseException) -> None:
        self.closed = True
        for watch in list(self._watches):
            watch.fail(error)


class _StaleToken(Exception):
    """A watch was refused, maybe only because the stream's token is stale."""


def _strip(event: Event, n: int) -> Event:
    """Remove a client namespace (its length *n*) from an event's keys."""
    prev = event.prev_kv
    return Event(
        event.type,
        dataclasses.replace(event.kv, key=event.kv.key[n:]),
        None if prev is None else dataclasses.replace(prev, key=prev.key[n:]),
    )
