"""The shared Watch stream beneath :class:`aetcd.Watch`: one per client, and its reconnect loop.

:class:`WatchStream` multiplexes every watch of a client on one bidirectional
stream, re-creates them from their resume points after a reconnect, and keeps
the per-incarnation state (a fresh watch id per server-side incarnation, the
fragments of a split response, the one retry with a fresh token). It talks to
a watch through the private hooks of :class:`Subscriber` and imports nothing
from ``aetcd.watch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Protocol

import grpc
import grpc.aio

from ._backoff import Backoff
from ._channel import State, Transport
from ._wire import messages as pb
from .errors import (
    AuthenticationError,
    ClientClosedError,
    CompactedError,
    EtcdError,
    PermissionDeniedError,
    WatchCanceledError,
    _from_grpc,
    from_message,
)

log = logging.getLogger("aetcd")

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


class Subscriber(Protocol):
    """What the stream needs of a watch: its state flags and private hooks."""

    watch_id: int  # the id of its current server-side incarnation (0: none)
    _done: bool  # ended: never created again
    _paused: bool  # cancelled on the server until its consumer catches up

    def _create_request(self, watch_id: int) -> pb.WatchRequest: ...

    def _on_created(self, header: pb.ResponseHeader) -> None: ...

    def _on_events(self, response: pb.WatchResponse, events: Sequence[Any]) -> bool: ...

    def _on_progress(self, header: pb.ResponseHeader) -> None: ...

    def _on_broadcast_progress(self, header: pb.ResponseHeader, trusted: bool) -> None: ...

    def _fail(self, error: BaseException) -> None: ...


class WatchStream:
    """The one bidirectional Watch stream of a client, and its reconnect loop.

    Owns one background task (``client.close()`` ends it, through
    ``WatchAPI.aclose``). Watch ids are chosen here, a fresh one for
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
        self._watches: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        # Watch id -> weak reference to its watch. A plain dict of references
        # (each removes its own entry when its watch is collected) rather than
        # a WeakValueDictionary, whose Python-level get() the hot path would pay
        # for every response.
        self._by_id: dict[int, weakref.ref[Subscriber]] = {}
        # Per incarnation (watch id): the fragments of a response split by the
        # server, until its last part arrives.
        self._fragments: dict[int, list[Any]] = {}
        # Watches whose refusal was retried once with a fresh token (P1).
        self._token_retried: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self._cancelling: set[int] = set()
        # Ids of the creates sent on this stream and not answered yet, oldest
        # first. etcd answers the creates of a stream in order, and since 3.5.x
        # answers a refused one with watch id -1 instead of the id asked for:
        # that answer belongs to the oldest create still unanswered.
        self._unanswered: deque[int] = deque()
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[pb.WatchRequest] = asyncio.Queue()
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._trust_requested_progress: bool | None = None
        self.closed = False
        self.streams_opened = 0

    # -- registry ------------------------------------------------------------------

    async def add(self, watch: Subscriber) -> None:
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

    def create(self, watch: Subscriber) -> None:
        """Create (or re-create) *watch* on the current stream, from its resume point."""
        if not self._connected or watch._done:
            return
        wid = next(self._ids)
        watch.watch_id = wid
        ids = self._by_id

        def forget(ref: weakref.ref[Subscriber]) -> None:
            if ids.get(wid) is ref:
                del ids[wid]

        ids[wid] = weakref.ref(watch, forget)
        self._unanswered.append(wid)
        self.send(watch._create_request(wid))

    def remove(self, watch: Subscriber) -> None:
        self._watches.discard(watch)
        self._cancel_id(watch.watch_id, watch)

    def _cancel_id(self, wid: int, watch: Subscriber | None) -> None:
        self._fragments.pop(wid, None)
        if watch is not None and self._watch_of(wid) is watch:
            del self._by_id[wid]
        if wid and self._connected and wid not in self._cancelling:
            self._cancelling.add(wid)
            self.send(pb.WatchRequest(cancel_request=pb.WatchCancelRequest(watch_id=wid)))

    def _watch_of(self, wid: int) -> Subscriber | None:
        ref = self._by_id.get(wid)
        return None if ref is None else ref()

    def send(self, request: pb.WatchRequest) -> None:
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
            watch._fail(error)

    # -- the reconnect loop ----------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(_BACKOFF_MIN, _BACKOFF_MAX)
        while True:
            try:
                await self._serve_one_stream()
                if self.closed:
                    return  # we hung up
                backoff.reset()
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
                error = _from_grpc(exc)
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
            await asyncio.sleep(backoff.next())

    async def _serve_one_stream(self) -> None:
        metadata = await self._t.stream_metadata()
        if self._trust_requested_progress is None:
            self._trust_requested_progress = await self._server_fixed_progress()
        call = self._t.watch.Watch(metadata=metadata, wait_for_ready=True)
        self._call = call
        self.streams_opened += 1
        self._queue = asyncio.Queue()
        self._by_id.clear()
        self._fragments.clear()
        self._cancelling.clear()
        self._unanswered.clear()
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
                self._t.maintenance.Status, pb.StatusRequest(), None, write=False
            )
        except EtcdError:
            return False
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", status.version)
        if not match:
            return False
        return tuple(int(x) for x in match.groups()) >= (3, 5, 8)

    def _dispatch(self, r: pb.WatchResponse) -> None:
        # Events for a live watch, whole (not a fragment): the one case that
        # happens per response under load, checked first and with as few
        # protobuf field reads as possible. Everything else is _control().
        ref = self._by_id.get(r.watch_id)
        if ref is not None:
            watch = ref()
            if watch is not None and not self._fragments:
                events = r.events
                if events and not (r.fragment or r.canceled or r.compact_revision):
                    if not watch._on_events(r, events):
                        # The consumer is behind: stop this watch on the server
                        # until it catches up, then re-create it from its
                        # resume point.
                        self._cancel_id(r.watch_id, watch)
                    return
        self._control(r)

    def _control(self, r: pb.WatchResponse) -> None:
        """Handle a response other than a plain batch of events."""
        wid = r.watch_id
        if r.created:
            unanswered = self._unanswered
            if wid == -1 and unanswered:
                wid = unanswered.popleft()  # refused without its id (see __init__)
            elif wid in unanswered:  # usually the first: answered in order
                unanswered.remove(wid)
        elif wid == -1:
            # To every watch created on this stream (paused ones are not on it),
            # but not to one whose create is still unanswered: etcd holds back
            # a new watch's events until its created response is sent, while a
            # progress notice is not held back, so the notice can overtake
            # events it does not cover; taken as that watch's resume point, it
            # would drop them.
            trusted = bool(self._trust_requested_progress)
            unanswered = self._unanswered
            for each_id, ref in list(self._by_id.items()):
                each = ref()
                if each is None or each._paused or each._done:
                    continue
                if unanswered and each_id in unanswered:
                    continue
                each._on_broadcast_progress(r.header, trusted)
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
                # Refused: etcd registered no watcher, so there is nothing to
                # cancel later (a cancel would never be answered).
                del self._by_id[wid]
                watch.watch_id = 0
                error = from_message(r.cancel_reason, WatchCanceledError)
                if (
                    isinstance(error, PermissionDeniedError | AuthenticationError)
                    and self._t.config.username is not None
                    and watch not in self._token_retried
                ):
                    # etcd < 3.6 checks a watch against the token the *stream* was
                    # opened with, and answers "permission denied" once that token
                    # expired or its member restarted (P1, etcd#12385): reopen the
                    # stream with a fresh token and try once more before failing.
                    self._token_retried.add(watch)
                    raise _StaleToken(error.message)
                watch._fail(error)
            else:
                self._token_retried.discard(watch)
                watch._on_created(r.header)
            return
        if r.canceled or r.compact_revision:
            # The server stops delivering to this watch, but etcd keeps a
            # compacted watcher registered until it is cancelled: cancel it
            # (once; as Go's clientv3 does for every watcher it closes).
            self._cancel_id(wid, watch)
            if r.compact_revision:
                watch._fail(
                    CompactedError(
                        _COMPACTED_MESSAGE,
                        compact_revision=r.compact_revision,
                    )
                )
            else:
                reason = r.cancel_reason or "etcdserver: watch canceled"
                watch._fail(from_message(reason, WatchCanceledError))
            return
        events: Sequence[Any] = r.events
        if r.fragment:
            self._fragments.setdefault(wid, []).extend(events)
            return
        parts = self._fragments.pop(wid, None)
        if parts:
            events = [*parts, *events]
        if events:
            if not watch._on_events(r, events):
                self._cancel_id(wid, watch)
        else:
            watch._on_progress(r.header)

    def _fail_all(self, error: BaseException) -> None:
        self.closed = True
        for watch in list(self._watches):
            watch._fail(error)


class _StaleToken(Exception):
    """A watch was refused, maybe only because the stream's token is stale."""
