"""The blocking Client and its stream and lease handles, bridged to the async core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from .. import client as _aio_client
from .. import lease as _aio_lease
from .. import maintenance as _aio_maintenance
from .. import watch as _aio_watch
from ..config import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TXN_OPS,
    DEFAULT_TIMEOUT,
    TLS,
    ClientConfig,
)
from ..ops import LeaseLike
from ..recipes.election import DEFAULT_ELECTION_TTL
from ..recipes.lock import DEFAULT_LOCK_TTL
from ..recipes.session import DEFAULT_SESSION_TTL
from ..types import Event, LeaseInfo, WatchFilter, WatchResponse
from ..watch import DEFAULT_MAX_BUFFER
from ._runner import Bridged, Runner, bridge

if TYPE_CHECKING:
    from ..errors import LeaseLostError
    from . import recipes

__all__ = ["Client", "Context", "Iterate", "Lease", "SnapshotStream", "Watch"]

_A = _aio_client.Client
_T = TypeVar("_T")


def _unwrap(value: Any) -> Any:
    """The async object behind a blocking handle (a lease or a session), else *value*."""
    return value._aio if isinstance(value, Bridged) else value


class Lease(Bridged):
    """A granted lease (the blocking face of :class:`aetcd.Lease`).

    Pass it wherever a lease id is accepted (``client.put(..., lease=lease)``).
    """

    __slots__ = ()
    _aio: _aio_lease.Lease

    def __repr__(self) -> str:
        return repr(self._aio).replace("<aetcd.", "<aetcd.sync.", 1)

    @property
    def id(self) -> int:
        """The lease id."""
        return self._aio.id

    @property
    def ttl(self) -> int:
        """The TTL the server granted, in seconds."""
        return self._aio.ttl

    @property
    def alive(self) -> bool:
        """False once the lease is known lost; never True again."""
        return self._runner.call(getattr, self._aio, "alive")  # type: ignore[no-any-return]

    @property
    def remaining(self) -> float:
        """Seconds until the lease expires by this client's estimate (0.0 once lost)."""
        return self._runner.call(getattr, self._aio, "remaining")  # type: ignore[no-any-return]

    @property
    def lost_reason(self) -> LeaseLostError | None:
        """Why the lease was lost, or ``None`` while it is alive."""
        return self._runner.call(getattr, self._aio, "lost_reason")  # type: ignore[no-any-return]

    def on_renewed(self, callback: Callable[[int], None] | None) -> None:
        """Call *callback* with the new TTL after each renewal (``None``: stop).

        It runs on the client's loop thread, so it must be quick and must not call
        the client (e.g. ``queue.SimpleQueue.put``). Renewals by :meth:`refresh` count too.
        """
        self._runner.call(self._aio.on_renewed, callback)

    def release(self) -> None:
        """Stop keeping the lease alive here, without revoking it (Go's ``Session.Orphan``);
        on the server it expires one TTL after its last renewal."""
        self._runner.call(self._aio.release)

    lost = bridge(_aio_lease.Lease.lost)
    revoke = bridge(_aio_lease.Lease.revoke)
    refresh = bridge(_aio_lease.Lease.refresh)
    time_to_live = bridge(_aio_lease.Lease.time_to_live)


class Context(Generic[_T]):
    """A ``with`` block around an async context manager; *wrap* makes what ``as`` binds."""

    __slots__ = ("_aio", "_runner", "_wrap")

    def __init__(self, runner: Runner, aio: Any, wrap: Callable[[Any], _T]) -> None:
        self._runner = runner
        self._aio = aio
        self._wrap = wrap

    def __enter__(self) -> _T:
        return self._wrap(self._runner.run(self._aio.__aenter__()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._runner.run(self._aio.__aexit__(exc_type, exc, tb))


class Iterate(Generic[_T]):
    """A blocking iterator over an async iterator; ``close()`` closes it on the loop."""

    __slots__ = ("_aio", "_runner", "_wrap")

    def __init__(
        self, runner: Runner, aio: AsyncIterator[Any], wrap: Callable[[Any], _T] | None = None
    ) -> None:
        self._runner = runner
        self._aio = aio
        self._wrap = wrap

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> _T:
        step: Coroutine[Any, Any, Any] = self._aio.__anext__()  # type: ignore[assignment]
        try:
            item = self._runner.run(step)
        except StopAsyncIteration:
            raise StopIteration from None
        return item if self._wrap is None else self._wrap(item)

    def close(self) -> None:
        """Stop the iteration (cancels the stream behind it)."""
        aclose = getattr(self._aio, "aclose", None)
        if aclose is not None and not self._runner.closed:
            self._runner.run(aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Watch(Bridged):
    """One watch (the blocking face of :class:`aetcd.Watch`): iterate it for events.

    ``with client.watch(...) as watch:`` returns once the server confirmed the
    watch, so nothing written after entry is missed; ``for event in watch``
    blocks for the next :class:`aetcd.Event`. After a disconnect the watch
    resumes from its last delivered revision + 1: nothing is lost, repeated or
    reordered. Leaving the block or :meth:`cancel` removes it on the server.
    """

    __slots__ = ()
    _aio: _aio_watch.Watch

    def __repr__(self) -> str:
        return repr(self._aio).replace("<aetcd.", "<aetcd.sync.", 1)

    @property
    def revision(self) -> int:
        """Everything up to this revision has been delivered."""
        return self._aio.revision

    @property
    def key(self) -> bytes:
        """The watched key (with the client's namespace)."""
        return self._aio.key

    @property
    def range_end(self) -> bytes:
        """The end of the watched range (empty: one key)."""
        return self._aio.range_end

    start = bridge(_aio_watch.Watch.start)
    cancel = bridge(_aio_watch.Watch.cancel)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._runner.closed:
            self.cancel()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event:
        try:
            return self._runner.run(self._aio.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def responses(self) -> Iterate[WatchResponse]:
        """Yield whole responses (batches of events as the server sent them, and
        progress notifications) instead of single events."""
        return Iterate(self._runner, self._aio.responses())


class SnapshotStream(Iterate[bytes]):
    """A streamed copy of one member's database (see :class:`aetcd.SnapshotStream`)."""

    __slots__ = ()
    _aio: _aio_maintenance.SnapshotStream

    @property
    def verified(self) -> bool:
        """``True`` once the trailing checksum was verified."""
        return self._aio.verified

    @property
    def bytes_received(self) -> int:
        """Bytes received so far."""
        return self._aio.bytes_received


class Client(Bridged):
    """A blocking client for one etcd cluster: :class:`aetcd.Client`'s methods,
    arguments, results and errors, for threads instead of tasks.

    The client owns a private event-loop thread, started here, on which the
    async core runs; every method hands its call to that loop and blocks the
    calling thread until it ends (within its deadline). One client is safe to
    share between threads: concurrent calls from many threads share one
    connection and are batched like concurrent tasks. ``close()`` (or leaving
    ``with``) closes the connection and stops the thread.

    A ``KeyboardInterrupt`` (or any exception raised into a waiting thread)
    cancels the call's RPC before it propagates. The client refuses to work in
    a forked child (:class:`aetcd.ClientClosedError`: create one after the
    fork) and inside a running event loop (``RuntimeError``: use
    :class:`aetcd.Client` there).
    """

    __slots__ = ("__weakref__",)
    _aio: _aio_client.Client

    def __init__(
        self,
        endpoints: str | Sequence[str] = "127.0.0.1:2379",
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TLS | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        keepalive_time: float = 10.0,
        keepalive_timeout: float = 5.0,
        namespace: str | bytes = b"",
        coalesce_reads: bool = True,
        coalesce_writes: bool = False,
        auto_sync_interval: float | None = None,
        require_leader: bool | None = None,
    ) -> None:
        runner = Runner("aetcd.sync")
        try:
            # Built on the loop thread: the async client belongs to that loop.
            aio = runner.call(
                lambda: _A(
                    endpoints,
                    username=username,
                    password=password,
                    tls=tls,
                    timeout=timeout,
                    connect_timeout=connect_timeout,
                    max_txn_ops=max_txn_ops,
                    max_request_bytes=max_request_bytes,
                    keepalive_time=keepalive_time,
                    keepalive_timeout=keepalive_timeout,
                    namespace=namespace,
                    coalesce_reads=coalesce_reads,
                    coalesce_writes=coalesce_writes,
                    auto_sync_interval=auto_sync_interval,
                    require_leader=require_leader,
                )
            )
        except BaseException:
            runner.stop()
            raise
        runner.closers.append(aio.close)
        super().__init__(runner, aio)

    def __repr__(self) -> str:
        return repr(self._aio).replace("<aetcd.", "<aetcd.sync.", 1)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def aio(self) -> _aio_client.Client:
        """The async client behind this one (usable only on its loop thread)."""
        return self._aio

    @property
    def endpoints(self) -> list[str]:
        """The configured endpoint addresses."""
        return self._aio.endpoints

    @property
    def settings(self) -> ClientConfig:
        """The validated configuration."""
        return self._aio.settings

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._runner.closed

    connect = bridge(_A.connect)

    def close(self) -> None:
        """Close the connection and stop the loop thread; later calls raise
        :class:`aetcd.ClientClosedError`. Safe to call twice, and in a forked child."""
        if not self._runner.closed:
            self._runner.stop()  # closes the async client on the loop first

    def __enter__(self) -> Self:
        self._runner.run(self._aio.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- KV, txn -----------------------------------------------------------------

    do = bridge(_A.do)
    get = bridge(_A.get)
    put = bridge(_A.put)
    delete = bridge(_A.delete)
    txn = bridge(_A.txn)
    compact = bridge(_A.compact)

    # -- leases ------------------------------------------------------------------

    def grant(self, ttl: int, *, id: int = 0, timeout: float | None = None) -> Lease:
        """Grant a lease of *ttl* seconds, not kept alive (see :meth:`aetcd.Client.grant`)."""
        return Lease(self._runner, self._runner.run(self._aio.grant(ttl, id=id, timeout=timeout)))

    def revoke(self, lease: LeaseLike, *, timeout: float | None = None) -> None:
        """Revoke *lease* now: it ends and its keys are deleted."""
        self._runner.run(self._aio.revoke(_unwrap(lease), timeout=timeout))

    def keepalive_once(self, lease: LeaseLike, *, timeout: float | None = None) -> int:
        """Renew *lease* once and return its new TTL (:class:`aetcd.LeaseNotFoundError` if gone)."""
        return self._runner.run(self._aio.keepalive_once(_unwrap(lease), timeout=timeout))

    def time_to_live(
        self, lease: LeaseLike, *, keys: bool = False, timeout: float | None = None
    ) -> LeaseInfo:
        """The server's view of *lease* (see :meth:`aetcd.Client.time_to_live`)."""
        return self._runner.run(self._aio.time_to_live(_unwrap(lease), keys=keys, timeout=timeout))

    leases = bridge(_A.leases)

    def lease(self, ttl: int = 5, *, id: int = 0) -> Context[Lease]:
        """``with client.lease(ttl) as lease:`` a lease kept alive, revoked on exit."""
        runner = self._runner
        return Context(runner, self._aio.lease(ttl, id=id), lambda a: Lease(runner, a))

    def keepalive(self, lease: LeaseLike) -> Context[Lease]:
        """``with client.keepalive(lease) as handle:`` keep an existing lease alive (no revoke)."""
        runner = self._runner
        ctx = self._aio.keepalive(_unwrap(lease))
        return Context(runner, ctx, lambda a: Lease(runner, a))

    # -- watch -------------------------------------------------------------------

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

        ``with client.watch(...) as watch: for event in watch: ...``; see
        :meth:`aetcd.Client.watch`. Arguments are checked here, before any I/O.
        """
        self._runner.check(blocking=False)
        w = self._aio.watch(
            key,
            prefix=prefix,
            range_end=range_end,
            from_key=from_key,
            start_revision=start_revision,
            prev_kv=prev_kv,
            filters=filters,
            progress_notify=progress_notify,
            max_buffer=max_buffer,
        )
        return Watch(self._runner, w)

    request_progress = bridge(_A.request_progress)

    # -- cluster, maintenance, auth ------------------------------------------------

    members = bridge(_A.members)
    member_add = bridge(_A.member_add)
    member_remove = bridge(_A.member_remove)
    member_update = bridge(_A.member_update)
    member_promote = bridge(_A.member_promote)

    status = bridge(_A.status)
    alarms = bridge(_A.alarms)
    disarm_alarms = bridge(_A.disarm_alarms)
    downgrade = bridge(_A.downgrade)
    defragment = bridge(_A.defragment)
    hash_kv = bridge(_A.hash_kv)
    move_leader = bridge(_A.move_leader)
    save_snapshot = bridge(_A.save_snapshot)

    def snapshot(
        self,
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
        verify: bool = True,
    ) -> SnapshotStream:
        """Stream one member's database as ``bytes`` chunks: ``for chunk in client.snapshot()``.

        Use ``with`` (or ``close()``) when you may stop early: it cancels the RPC.
        """
        self._runner.check(blocking=False)
        s = self._aio.snapshot(endpoint=endpoint, timeout=timeout, verify=verify)
        return SnapshotStream(self._runner, s)

    auth_enable = bridge(_A.auth_enable)
    auth_disable = bridge(_A.auth_disable)
    auth_status = bridge(_A.auth_status)
    authenticate = bridge(_A.authenticate)
    user_add = bridge(_A.user_add)
    user_get = bridge(_A.user_get)
    user_list = bridge(_A.user_list)
    user_delete = bridge(_A.user_delete)
    user_change_password = bridge(_A.user_change_password)
    user_grant_role = bridge(_A.user_grant_role)
    user_revoke_role = bridge(_A.user_revoke_role)
    role_add = bridge(_A.role_add)
    role_get = bridge(_A.role_get)
    role_list = bridge(_A.role_list)
    role_delete = bridge(_A.role_delete)
    role_grant_permission = bridge(_A.role_grant_permission)
    role_revoke_permission = bridge(_A.role_revoke_permission)

    # -- recipe shortcuts ----------------------------------------------------------

    def session(self, ttl: int = DEFAULT_SESSION_TTL) -> recipes.Session:
        """A :class:`aetcd.sync.recipes.Session`: ``with client.session(ttl=60) as s:``."""
        from .recipes import Session

        return Session(self, ttl=ttl)

    def lock(
        self,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_LOCK_TTL,
        timeout: float | None = None,
        session: recipes.Session | None = None,
    ) -> recipes.Lock:
        """A :class:`aetcd.sync.recipes.Lock`: ``with client.lock("name", timeout=5):``."""
        from .recipes import Lock

        return Lock(session if session is not None else self, name, ttl=ttl, timeout=timeout)

    def election(
        self,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_ELECTION_TTL,
        session: recipes.Session | None = None,
    ) -> recipes.Election:
        """A :class:`aetcd.sync.recipes.Election` handle for the election *name*."""
        from .recipes import Election

        return Election(session if session is not None else self, name, ttl=ttl)

    def heartbeat(
        self, key: str | bytes, value: str | bytes = b"", *, ttl: int = 5
    ) -> recipes.Heartbeat:
        """``with client.heartbeat("heart-ping", "live", ttl=5) as hb:`` *key*
        exists while this process is alive."""
        from .recipes import Heartbeat

        return Heartbeat(self, key, value, ttl=ttl)

    def register(
        self, service: str, addr: str, *, ttl: int = 10, metadata: object = None
    ) -> recipes.Registration:
        """``with client.register("my-service", "10.0.0.7:8080", ttl=10):``"""
        from .recipes import Registration

        return Registration(self, service, addr, ttl=ttl, metadata=metadata)

    def discover(self, service: str) -> recipes.Discovery:
        """A live view of *service*'s instances: ``with client.discover("svc") as d:``."""
        from .recipes import Discovery

        return Discovery(self, service)

    def config(
        self, prefix: str | bytes, *, decode: Callable[[bytes], object] | None = None
    ) -> recipes.ConfigMirror:
        """A hot-reloaded read-only mirror of *prefix*: ``with client.config("app/") as cfg:``."""
        from .recipes import ConfigMirror

        return ConfigMirror(self, prefix, decode=decode)
