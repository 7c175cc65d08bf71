"""The Maintenance facade: status, alarms, defragmentation, hashes, leadership
transfer and snapshots.

Most maintenance RPCs act on the ONE member that receives them, while the
client's channel balances round robin over every endpoint. So these methods
take ``endpoint="host:port"``: the call then goes over a short-lived channel
to exactly that member (same TLS settings, same auth token), closed afterwards.
Without it, whichever member the channel picks answers (with a single
endpoint: that one).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import grpc
import grpc.aio

from ._channel import Transport, make_channel
from ._keys import to_int, to_timeout
from ._wire import decode
from ._wire import messages as pb
from .cluster import _to_member_id
from .config import ClientConfig, Endpoint
from .errors import (
    AuthenticationError,
    ClusterError,
    CorruptError,
    EtcdError,
    InvalidArgumentError,
    _from_grpc,
    _rejected,
)
from .types import Alarm, AlarmType, DowngradeAction, DowngradeResult, HashKVResult, Status

__all__ = ["MaintenanceAPI", "SnapshotStream"]

_T = TypeVar("_T")

#: etcd ends every snapshot stream with the SHA-256 of the database bytes sent
#: before it (``etcdutl snapshot restore`` checks it).
SNAPSHOT_SHA_SIZE: Final = 32
_WRITE_BATCH: Final = 1 << 20  # bytes buffered before a write to disk
_MOVE_LEADER_ATTEMPTS: Final = 3
_NOT_LEADER: Final = "etcdserver: not leader"


def _downgrade_action(value: object) -> DowngradeAction:
    if isinstance(value, DowngradeAction):
        return value
    if isinstance(value, str) and value.upper() in DowngradeAction.__members__:
        return DowngradeAction[value.upper()]
    raise TypeError(f"action must be an aetcd.DowngradeAction, not {value!r}")


def _to_endpoint(endpoint: object) -> Endpoint | None:
    if endpoint is None:
        return None
    return Endpoint.parse(endpoint)


def _member_channel(config: ClientConfig, endpoint: Endpoint) -> grpc.aio.Channel:
    """A new channel to exactly one member, with the client's channel settings.

    TLS is used when the client uses it or the endpoint says ``https://``
    (never downgraded to plaintext). The caller closes the channel.
    """
    return make_channel(config, endpoint)


@contextlib.asynccontextmanager
async def _maintenance(
    t: Transport, endpoint: Endpoint | None
) -> AsyncIterator[pb.MaintenanceStub]:
    """The client's Maintenance stub, or one on a private channel to *endpoint*."""
    await t.open()
    if endpoint is None:
        yield t.maintenance
        return
    channel = _member_channel(t.config, endpoint)
    try:
        yield pb.MaintenanceStub(channel)
    finally:
        await channel.close(grace=None)


async def _in_thread(func: Callable[..., _T], *args: Any) -> _T:
    """``asyncio.to_thread`` that, when cancelled, still waits for *func* to end.

    The caller's cleanup (closing or removing a file) must not race with a write
    still running in the worker thread.
    """
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


def _temp_file(path: str) -> tuple[int, str, str]:
    """Create a private temp file next to *path*: (fd, temp path, absolute path)."""
    target = os.path.abspath(path)
    directory, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(suffix=".part", prefix=f".{name}.", dir=directory)
    return fd, tmp, target


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _commit(fd: int, tmp: str, path: str) -> None:
    """fsync and close the temp file, rename it over *path*, fsync the directory."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:  # e.g. platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _discard(fd: int | None, tmp: str) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


class SnapshotStream:
    """A streamed copy of one member's database: ``async for chunk in stream``.

    Yields the bytes exactly as etcd sends them: the bbolt database followed by
    its 32-byte SHA-256, the file layout ``etcdutl snapshot restore`` expects.
    With ``verify=True`` (the default) the stream checks that checksum after
    the last chunk and raises :class:`aetcd.CorruptError` on a mismatch or a
    truncated stream. ``verified`` is ``True`` once it passed.

    The stream starts on the first iteration. Use it as ``async with`` (or call
    :meth:`aclose`) when you may stop early: closing, or cancelling the task
    that iterates, cancels the RPC on the wire. Errors during the stream are
    :class:`aetcd.EtcdError` subclasses; it is never retried midway.
    """

    def __init__(
        self, t: Transport, endpoint: Endpoint | None, timeout: float | None, verify: bool
    ) -> None:
        self._t = t
        self._endpoint = endpoint
        self._timeout = timeout
        self._verify = verify
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._done = False
        self._hash = hashlib.sha256()
        self._tail = b""
        #: Bytes received so far (including the trailing checksum).
        self.bytes_received = 0
        #: Bytes the server said were still to come after the last chunk.
        self.remaining_bytes: int | None = None
        #: ``True`` once the trailing checksum was verified.
        self.verified = False

    def __repr__(self) -> str:
        state = "done" if self._done else "open" if self._call is not None else "new"
        return f"<aetcd.SnapshotStream {state} bytes_received={self.bytes_received}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._next()
        except BaseException:
            await self.aclose()
            raise

    async def _next(self) -> bytes:
        refreshed = False
        while True:
            if self._call is None:
                await self._start()
            try:
                response = await self._call.read()
            except grpc.aio.AioRpcError as exc:
                error = _from_grpc(exc)
                if (
                    not refreshed
                    and self.bytes_received == 0
                    and isinstance(error, AuthenticationError)
                    and error.retryable
                    and self._t.config.username is not None
                ):
                    # The token expired before anything was sent: refresh and reopen.
                    refreshed = True
                    self._call = None
                    await self._t.refresh_token()
                    continue
                raise error from exc
            if response is grpc.aio.EOF:
                self._finish()
                raise StopAsyncIteration
            assert isinstance(response, pb.SnapshotResponse)
            blob = response.blob
            self.bytes_received += len(blob)
            self.remaining_bytes = response.remaining_bytes
            if self._verify:
                data = self._tail + blob
                cut = max(len(data) - SNAPSHOT_SHA_SIZE, 0)
                self._hash.update(memoryview(data)[:cut])
                self._tail = data[cut:]
            if blob:
                return blob

    async def _start(self) -> None:
        t = self._t
        await t.open()
        if self._endpoint is None:
            stub = t.maintenance
        else:
            if self._channel is None:
                self._channel = _member_channel(t.config, self._endpoint)
            stub = pb.MaintenanceStub(self._channel)
        self._call = stub.Snapshot(
            pb.SnapshotRequest(),
            timeout=self._timeout,
            metadata=t.metadata,
            wait_for_ready=True,
        )

    def _finish(self) -> None:
        self._done = True
        if not self._verify:
            return
        if self.remaining_bytes != 0 or len(self._tail) != SNAPSHOT_SHA_SIZE:
            raise CorruptError(f"snapshot stream ended early after {self.bytes_received} bytes")
        if self._hash.digest() != self._tail:
            raise CorruptError(
                f"snapshot checksum mismatch after {self.bytes_received} bytes: "
                "the received data is not what the member sent"
            )
        self.verified = True

    async def aclose(self) -> None:
        """Stop the stream: cancel the RPC if still running and close its channel."""
        self._done = True
        call, self._call = self._call, None
        if call is not None:
            call.cancel()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)


class MaintenanceAPI:
    """Maintenance operations of :class:`aetcd.Client` (etcd's Maintenance service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def status(self, endpoint: str | None = None, *, timeout: float | None = None) -> Status:
        """The state of one member: version, database size, raft indexes, leader.

        ``endpoint="host:port"`` asks exactly that member (``status.member_id``
        says which one answered). A member that cannot be reached raises
        :class:`aetcd.DeadlineExceededError` when the deadline passes.
        """
        ep = _to_endpoint(endpoint)
        t = self._t
        async with _maintenance(t, ep) as stub:
            resp = await t.unary(stub.Status, pb.StatusRequest(), timeout, write=False)
        return decode.status(resp)

    async def alarms(self, *, timeout: float | None = None) -> list[Alarm]:
        """The alarms raised in the cluster, on any member (empty when healthy).

        While a NOSPACE alarm is raised every write fails with
        :class:`aetcd.NoSpaceError` (reads and deletes still work); free space
        (compact, then :meth:`defragment` each member) and
        :meth:`disarm_alarms`.
        """
        t = self._t
        req = pb.AlarmRequest(action=pb.AlarmRequest.GET, memberID=0, alarm=pb.NONE)
        resp = await t.unary(t.maintenance.Alarm, req, timeout, write=False)
        return [decode.alarm(a) for a in resp.alarms]

    async def disarm_alarms(self, *alarms: Alarm, timeout: float | None = None) -> list[Alarm]:
        """Disarm *alarms* (from :meth:`alarms`), or every raised alarm when none
        are given; return those actually disarmed.

        Disarming NOSPACE while the database is still over its quota lets the
        next write raise it again. A disarm that fails in transit raises
        :class:`aetcd.OutcomeUnknownError`; calling again is harmless.
        """
        for alarm in alarms:
            if not isinstance(alarm, Alarm):
                raise TypeError(f"alarms must be aetcd.Alarm, not {type(alarm).__name__}")
        t = self._t
        targets = list(alarms) if alarms else await self.alarms(timeout=timeout)
        disarmed: list[Alarm] = []
        for alarm in targets:
            if alarm.type is AlarmType.NONE:
                continue
            req = pb.AlarmRequest(
                action=pb.AlarmRequest.DEACTIVATE,
                memberID=alarm.member_id,
                alarm=pb.AlarmType.ValueType(alarm.type),
            )
            resp = await t.unary(t.maintenance.Alarm, req, timeout, write=True)
            disarmed.extend(decode.alarm(a) for a in resp.alarms)
        return disarmed

    async def downgrade(
        self,
        action: DowngradeAction | str,
        version: str | None = None,
        *,
        timeout: float | None = None,
    ) -> DowngradeResult:
        """Validate, enable or cancel lowering the cluster version (etcd's Downgrade).

        *action* is a :class:`aetcd.DowngradeAction` (or its name, any case).
        ``VALIDATE`` and ``ENABLE`` need the target *version* (``"3.4"``; one
        minor version below the cluster's); ``CANCEL`` takes none. The result's
        ``version`` is the cluster version. etcd refuses with
        :class:`aetcd.InvalidArgumentError` a target it cannot downgrade to
        (``etcdserver: invalid downgrade target version``) or cannot parse
        (``etcdserver: wrong downgrade target version format``), and with
        :class:`aetcd.ClusterError` an ``ENABLE`` or ``VALIDATE`` while a
        downgrade is in progress (``etcdserver: cluster has a downgrade job in
        progress``) or a ``CANCEL`` without one (``etcdserver: no inflight
        downgrade job``).

        ``ENABLE`` and ``CANCEL`` are writes: one that fails in transit raises
        :class:`aetcd.OutcomeUnknownError`. etcd 3.5 applies them but never
        answers (its apply loop does not report their result; etcd-io/etcd#15878),
        so against 3.5 they end with :class:`aetcd.OutcomeUnknownError` at the
        deadline: check with ``VALIDATE`` (which then says a downgrade is in
        progress) or a second ``CANCEL`` (``no inflight downgrade job``).
        """
        act = _downgrade_action(action)
        if act is DowngradeAction.CANCEL:
            if version is not None:
                raise InvalidArgumentError("a downgrade CANCEL takes no version")
            version = ""
        elif not isinstance(version, str):
            raise TypeError(f"version must be str, not {type(version).__name__}")
        elif not version:
            raise _rejected(
                InvalidArgumentError,
                "etcdserver: wrong downgrade target version format",
                f"a downgrade {act.name} needs a target version",
            )
        t = self._t
        req = pb.DowngradeRequest(
            action=pb.DowngradeRequest.DowngradeAction.ValueType(act), version=version
        )
        write = act is not DowngradeAction.VALIDATE
        resp = await t.unary(t.maintenance.Downgrade, req, timeout, write=write)
        return decode.downgrade_result(resp)

    async def defragment(
        self, endpoint: str | None = None, *, timeout: float | None = None
    ) -> None:
        """Rewrite one member's database file to give the space freed by
        compaction back to the file system.

        The member blocks reads and writes while it runs (seconds for a large
        database: pass a generous ``timeout``), so defragment the members of a
        cluster one at a time, each by ``endpoint=``. Without ``endpoint`` the
        member the channel picks is defragmented. A failure in transit raises
        :class:`aetcd.OutcomeUnknownError`; defragmenting again is harmless.
        """
        ep = _to_endpoint(endpoint)
        t = self._t
        async with _maintenance(t, ep) as stub:
            await t.unary(stub.Defragment, pb.DefragmentRequest(), timeout, write=True)

    async def hash_kv(
        self,
        revision: int = 0,
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
    ) -> HashKVResult:
        """Hash one member's key-value history up to *revision* (0: the latest).

        Ask every member (``endpoint=``) at one revision: healthy members return
        the same hash. A compacted revision raises :class:`aetcd.CompactedError`,
        a future one :class:`aetcd.FutureRevisionError`.
        """
        rev = to_int(revision, "revision")
        ep = _to_endpoint(endpoint)
        t = self._t
        async with _maintenance(t, ep) as stub:
            req = pb.HashKVRequest(revision=rev)
            resp = await t.unary(stub.HashKV, req, timeout, write=False)
        return decode.hash_kv_result(resp)

    async def move_leader(
        self,
        member_id: int,
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Hand leadership to voting member *member_id*; return once it leads.

        Only the current leader accepts this request, so the client finds it
        (its status, then its client URL among the configured endpoints or the
        member list) unless ``endpoint=`` names the leader. Raises
        :class:`aetcd.ClusterError` for an unknown member or a learner
        (``bad leader transferee``), and :class:`aetcd.OutcomeUnknownError`
        when the transfer did not finish in time (check :meth:`status`).
        """
        target = _to_member_id(member_id, "member_id")
        ep = _to_endpoint(endpoint)
        t = self._t
        req = pb.MoveLeaderRequest(targetID=target)
        for attempt in range(1, _MOVE_LEADER_ATTEMPTS + 1):
            leader_ep = ep if ep is not None else await self._leader_endpoint(timeout)
            try:
                async with _maintenance(t, leader_ep) as stub:
                    await t.unary(stub.MoveLeader, req, timeout, write=True)
                return
            except ClusterError as error:
                # "not leader" is refused before anything happens: look again.
                if error.message != _NOT_LEADER or ep is not None:
                    raise
                if attempt == _MOVE_LEADER_ATTEMPTS:
                    raise
                await asyncio.sleep(0.1 * attempt)

    async def _leader_endpoint(self, timeout: float | None) -> Endpoint | None:
        """Where to reach the leader (``None``: the client's own channel)."""
        t = self._t
        status = await self.status(timeout=timeout)
        if status.leader == 0:
            raise ClusterError("the cluster has no leader", retryable=True)
        if status.is_leader and len(t.config.endpoints) == 1:
            return None
        resp = await t.unary(t.cluster.MemberList, pb.MemberListRequest(), timeout, write=False)
        urls = next((list(m.clientURLs) for m in resp.members if m.ID == status.leader), [])
        candidates: list[Endpoint] = []
        for url in urls:
            with contextlib.suppress(EtcdError, TypeError):
                candidates.append(Endpoint.parse(url))
        configured = {(e.host, e.port): e for e in t.config.endpoints}
        for cand in candidates:
            if (cand.host, cand.port) in configured:
                return configured[(cand.host, cand.port)]
        if candidates:
            return candidates[0]
        raise ClusterError(f"the leader {status.leader:x} publishes no usable client URL")

    def snapshot(
        self,
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
        verify: bool = True,
    ) -> SnapshotStream:
        """Stream a consistent copy of one member's database as ``bytes`` chunks.

        ``async with client.snapshot() as stream: async for chunk in stream:``.
        The stream has no deadline unless ``timeout`` (seconds for the whole
        transfer) is given. See :class:`SnapshotStream` for the checksum and
        cancellation; :meth:`save_snapshot` writes one to a file safely.
        """
        ep = _to_endpoint(endpoint)
        limit = None if timeout is None else to_timeout(timeout)
        if type(verify) is not bool:
            raise TypeError(f"verify must be bool, not {type(verify).__name__}")
        return SnapshotStream(self._t, ep, limit, verify)

    async def save_snapshot(
        self,
        path: str | os.PathLike[str],
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
        verify: bool = True,
    ) -> int:
        """Save a snapshot of one member's database to *path*; return its size.

        The data goes to a temporary file next to *path* (mode 0600: it holds
        every key and the auth store), which is fsynced and then atomically
        renamed over *path*, so *path* is either the old file or a complete,
        checksum-verified snapshot, never a partial one. The file is what
        ``etcdutl snapshot restore`` takes. On any failure or cancellation the
        temporary file is removed and the error raised.
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
        stream = self.snapshot(endpoint=endpoint, timeout=timeout, verify=verify)
        made: list[tuple[int, str, str]] = []

        def make_temp() -> tuple[int, str, str]:
            made.append(_temp_file(os.fspath(path)))
            return made[0]

        fd: int | None
        try:
            fd, tmp, target = await _in_thread(make_temp)
        except BaseException:
            if made:  # cancelled while the thread created it
                await asyncio.shield(_in_thread(_discard, made[0][0], made[0][1]))
            raise
        written = 0
        try:
            async with stream:
                buffer = bytearray()
                async for chunk in stream:
                    buffer += chunk
                    if len(buffer) >= _WRITE_BATCH:
                        data = bytes(buffer)
                        buffer.clear()
                        await _in_thread(_write_all, fd, data)
                        written += len(data)
                if buffer:
                    await _in_thread(_write_all, fd, bytes(buffer))
                    written += len(buffer)
            owned, fd = fd, None  # _commit closes it, whatever happens
            await _in_thread(_commit, owned, tmp, target)
        except BaseException:
            await asyncio.shield(_in_thread(_discard, fd, tmp))
            raise
        return written
