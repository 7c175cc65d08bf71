"""The Client: lifecycle plus the composition of the per-service facades.

:class:`Client` owns the :class:`~aetcd._channel.Transport`, one private
object per etcd service (``_kv``, ``_leases``, ``_watches``, ``_cluster``,
``_maintenance``, ``_auth``) and one :class:`contextlib.AsyncExitStack` on
which everything with background work registers its shutdown (all built by
``aetcd._compose``). Its public methods are one-line delegators: plain
functions returning the service's coroutine, so a call costs no coroutine
frame of its own. The recipe shortcuts (``aetcd._shortcuts``) import their
recipe on first use: ``import aetcd`` loads none.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from . import _shortcuts
from ._channel import State, Transport
from ._compose import compose, doc
from ._lease_blocks import _KeepAliveContext, _LeaseContext
from .auth import AuthAPI
from .cluster import ClusterAPI
from .config import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TXN_OPS,
    DEFAULT_TIMEOUT,
    TLS,
    ClientConfig,
    Secret,
)
from .kv import KV
from .lease import Lease, LeaseAPI
from .maintenance import MaintenanceAPI, SnapshotStream
from .ops import Compare, LeaseLike, Op
from .types import (
    Alarm,
    AuthStatus,
    CompactResult,
    DeleteResult,
    DowngradeAction,
    DowngradeResult,
    GetResult,
    HashKVResult,
    LeaseInfo,
    Member,
    OpResult,
    Permission,
    PutResult,
    Role,
    SortOrder,
    SortTarget,
    Status,
    TxnResult,
    User,
    WatchFilter,
)
from .watch import DEFAULT_MAX_BUFFER, Watch, WatchAPI

if TYPE_CHECKING:
    from .recipes.config import ConfigMirror
    from .recipes.discovery import Discovery, Registration
    from .recipes.election import Election
    from .recipes.heartbeat import Heartbeat
    from .recipes.lock import Lock
    from .recipes.session import Session, _IdleSessions

__all__ = ["Client"]

# (The types above are imported at run time, from modules loaded anyway, so
# that the docs can resolve the delegators' annotations.)


class Client:
    """An asyncio client for one etcd cluster.

    ``endpoints`` is one address or a list (``host:port``, ``http://host:port``
    or ``https://host:port``; https means TLS with the system roots unless
    ``tls=`` says otherwise). ``timeout`` is the default deadline of every call
    in seconds (``math.inf``: none). ``username``/``password`` turn on etcd auth;
    the token is refreshed automatically. ``max_txn_ops`` and
    ``max_request_bytes`` mirror the server's limits so oversize requests fail
    locally; raise them if your server's flags do. ``namespace="app1/"``
    prefixes every key transparently (KV, txn compares, watches, recipes): the
    client sees and returns keys without it, like Go's ``namespace`` package.

    ``coalesce_reads`` (on by default) sends concurrent ``get`` calls made in
    the same event-loop turn as one read-only txn: far fewer RPCs under load,
    and the reads of one batch are served at one revision (still linearizable).
    ``coalesce_writes=True`` does the same for ``put`` and ``delete``: writes of
    one batch then share one revision; a batch the server rejects is re-sent
    write by write so only the faulty one fails, and a batch whose outcome is
    unknown fails each of its writes with :class:`aetcd.OutcomeUnknownError`.

    Each endpoint gets its own channel; calls go round robin to connected
    members and avoid suspect ones (see ``aetcd._channel``).
    ``auto_sync_interval`` (seconds) refreshes the endpoint list from the
    cluster's member list. ``require_leader`` controls etcd's ``hasleader``
    check on unary calls (see :meth:`aetcd.ClientConfig.build`): by default it
    is sent only while the client has recently seen trouble.

    Use it as ``async with aetcd.Client(...) as client:``, or call methods
    directly (the connection opens on first use) and ``await client.close()``.
    One client holds one gRPC channel; share it between tasks. It cannot be used
    across ``fork()``.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] = "127.0.0.1:2379",
        *,
        username: str | None = None,
        password: str | Secret | None = None,
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
        # First of all, the plain password out of this frame's locals (error
        # trackers record them; see aetcd.Secret).
        password = None if password is None else Secret(password)
        self._settings = ClientConfig.build(
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
            auto_sync_interval=auto_sync_interval,
            require_leader=require_leader,
        )
        parts = compose(self._settings, coalesce_reads, coalesce_writes)
        self._t, self._stack, self._kv = parts.transport, parts.stack, parts.kv
        self._leases, self._watches, self._cluster = parts.leases, parts.watches, parts.cluster
        self._maintenance, self._auth = parts.maintenance, parts.auth
        self._idle: _IdleSessions | None = None

    def __repr__(self) -> str:
        # Also called on a client whose __init__ raised (error trackers, debuggers).
        t: Transport | None = getattr(self, "_t", None)
        if t is None:
            return "<aetcd.Client (not initialised)>"
        eps = [e.address for e in t.endpoints]
        return f"<aetcd.Client endpoints={eps} state={t.state.value}>"

    @property
    def endpoints(self) -> list[str]:
        """The configured endpoint addresses."""
        return [e.address for e in self._t.endpoints]

    @property
    def settings(self) -> ClientConfig:
        """The validated configuration (secrets are left out of its repr).

        (``client.config(prefix)`` is the configuration-mirror recipe.)
        """
        return self._settings

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._t.state is State.CLOSED

    async def connect(self, *, timeout: float | None = None) -> None:
        """Connect now instead of on first use: open the channels, authenticate
        if configured, and wait until at least one endpoint's connection is up
        (like Go's blocking dial with ``DialTimeout``).

        *timeout* defaults to ``connect_timeout``, else the client's call timeout. Raises
        :class:`aetcd.ConnectionFailedError` if no endpoint answers in time (at
        once if every endpoint refuses the TLS handshake), and
        :class:`aetcd.AuthenticationError` for wrong credentials.
        """
        if timeout is None and self._settings.connect_timeout is not None:
            timeout = self._settings.connect_timeout
        await self._t.wait_connected(self._t.deadline(timeout))

    async def close(self) -> None:
        """Close the connection. Later calls raise :class:`aetcd.ClientClosedError`.

        When it returns, nothing of the client is left on the event loop (streams,
        channels, background tasks): the loop can be closed next without errors.
        """
        self._t.shut()  # calls made while the services close fail at once
        await self._stack.aclose()

    async def __aenter__(self) -> Self:
        await self._t.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- KV --------------------------------------------------------------------

    @doc(KV.do)
    def do(self, op: Op, *, timeout: float | None = None) -> Coroutine[Any, Any, OpResult]:
        return self._kv.do(op, timeout=timeout)

    @doc(KV.get)
    def get(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        limit: int = 0,
        revision: int = 0,
        sort_order: SortOrder | None = None,
        sort_target: SortTarget | None = None,
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, GetResult]:
        return self._kv.get(
            key,
            prefix,
            range_end,
            from_key,
            limit,
            revision,
            sort_order,
            sort_target,
            serializable,
            keys_only,
            count_only,
            min_mod_revision,
            max_mod_revision,
            min_create_revision,
            max_create_revision,
            timeout,
        )

    @doc(KV.put)
    def put(
        self,
        key: str | bytes,
        value: str | bytes,
        *,
        lease: LeaseLike | None = None,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, PutResult]:
        return self._kv.put(key, value, lease, prev_kv, ignore_value, ignore_lease, timeout)

    @doc(KV.delete)
    def delete(
        self,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        prev_kv: bool = False,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, DeleteResult]:
        return self._kv.delete(key, prefix, range_end, from_key, prev_kv, timeout)

    @doc(KV.txn)
    def txn(
        self,
        compare: Iterable[Compare] = (),
        success: Iterable[Op] = (),
        failure: Iterable[Op] = (),
        *,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, TxnResult]:
        return self._kv.txn(compare, success, failure, timeout)

    @doc(KV.compact)
    def compact(
        self, revision: int, *, physical: bool = False, timeout: float | None = None
    ) -> Coroutine[Any, Any, CompactResult]:
        return self._kv.compact(revision, physical=physical, timeout=timeout)

    # -- LeaseAPI --------------------------------------------------------------

    @doc(LeaseAPI.grant)
    def grant(
        self, ttl: int, *, id: int = 0, timeout: float | None = None
    ) -> Coroutine[Any, Any, Lease]:
        return self._leases.grant(ttl, id=id, timeout=timeout)

    @doc(LeaseAPI.revoke)
    def revoke(
        self, lease: LeaseLike, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        return self._leases.revoke(lease, timeout=timeout)

    @doc(LeaseAPI.keepalive_once)
    def keepalive_once(
        self, lease: LeaseLike, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, int]:
        return self._leases.keepalive_once(lease, timeout=timeout)

    @doc(LeaseAPI.time_to_live)
    def time_to_live(
        self, lease: LeaseLike, *, keys: bool = False, timeout: float | None = None
    ) -> Coroutine[Any, Any, LeaseInfo]:
        return self._leases.time_to_live(lease, keys=keys, timeout=timeout)

    @doc(LeaseAPI.leases)
    def leases(self, *, timeout: float | None = None) -> Coroutine[Any, Any, list[int]]:
        return self._leases.leases(timeout=timeout)

    @doc(LeaseAPI.lease)
    def lease(self, ttl: int = 5, *, id: int = 0) -> _LeaseContext:
        return self._leases.lease(ttl, id=id)

    @doc(LeaseAPI.keepalive)
    def keepalive(self, lease: LeaseLike) -> _KeepAliveContext:
        return self._leases.keepalive(lease)

    # -- WatchAPI --------------------------------------------------------------

    @doc(WatchAPI.watch)
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
        return self._watches.watch(
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

    @doc(WatchAPI.request_progress)
    def request_progress(self) -> Coroutine[Any, Any, None]:
        return self._watches.request_progress()

    # -- ClusterAPI ------------------------------------------------------------

    @doc(ClusterAPI.members)
    def members(
        self, *, linearizable: bool = False, timeout: float | None = None
    ) -> Coroutine[Any, Any, list[Member]]:
        return self._cluster.members(linearizable=linearizable, timeout=timeout)

    @doc(ClusterAPI.member_add)
    def member_add(
        self, peer_urls: str | Sequence[str], *, learner: bool = False, timeout: float | None = None
    ) -> Coroutine[Any, Any, Member]:
        return self._cluster.member_add(peer_urls, learner=learner, timeout=timeout)

    @doc(ClusterAPI.member_remove)
    def member_remove(
        self, id: int, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, list[Member]]:
        return self._cluster.member_remove(id, timeout=timeout)

    @doc(ClusterAPI.member_update)
    def member_update(
        self, id: int, peer_urls: str | Sequence[str], *, timeout: float | None = None
    ) -> Coroutine[Any, Any, list[Member]]:
        return self._cluster.member_update(id, peer_urls, timeout=timeout)

    @doc(ClusterAPI.member_promote)
    def member_promote(
        self, id: int, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, list[Member]]:
        return self._cluster.member_promote(id, timeout=timeout)

    # -- MaintenanceAPI --------------------------------------------------------

    @doc(MaintenanceAPI.status)
    def status(
        self, endpoint: str | None = None, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, Status]:
        return self._maintenance.status(endpoint, timeout=timeout)

    @doc(MaintenanceAPI.alarms)
    def alarms(self, *, timeout: float | None = None) -> Coroutine[Any, Any, list[Alarm]]:
        return self._maintenance.alarms(timeout=timeout)

    @doc(MaintenanceAPI.disarm_alarms)
    def disarm_alarms(
        self, *alarms: Alarm, timeout: float | None = None
    ) -> Coroutine[Any, Any, list[Alarm]]:
        return self._maintenance.disarm_alarms(*alarms, timeout=timeout)

    @doc(MaintenanceAPI.downgrade)
    def downgrade(
        self,
        action: DowngradeAction | str,
        version: str | None = None,
        *,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, DowngradeResult]:
        return self._maintenance.downgrade(action, version, timeout=timeout)

    @doc(MaintenanceAPI.defragment)
    def defragment(
        self, endpoint: str | None = None, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        return self._maintenance.defragment(endpoint, timeout=timeout)

    @doc(MaintenanceAPI.hash_kv)
    def hash_kv(
        self, revision: int = 0, *, endpoint: str | None = None, timeout: float | None = None
    ) -> Coroutine[Any, Any, HashKVResult]:
        return self._maintenance.hash_kv(revision, endpoint=endpoint, timeout=timeout)

    @doc(MaintenanceAPI.move_leader)
    def move_leader(
        self, member_id: int, *, endpoint: str | None = None, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        return self._maintenance.move_leader(member_id, endpoint=endpoint, timeout=timeout)

    @doc(MaintenanceAPI.snapshot)
    def snapshot(
        self, *, endpoint: str | None = None, timeout: float | None = None, verify: bool = True
    ) -> SnapshotStream:
        return self._maintenance.snapshot(endpoint=endpoint, timeout=timeout, verify=verify)

    @doc(MaintenanceAPI.save_snapshot)
    def save_snapshot(
        self,
        path: str | os.PathLike[str],
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
        verify: bool = True,
    ) -> Coroutine[Any, Any, int]:
        return self._maintenance.save_snapshot(
            path, endpoint=endpoint, timeout=timeout, verify=verify
        )

    # -- AuthAPI ---------------------------------------------------------------

    @doc(AuthAPI.auth_enable)
    def auth_enable(self, *, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        return self._auth.auth_enable(timeout=timeout)

    @doc(AuthAPI.auth_disable)
    def auth_disable(self, *, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        return self._auth.auth_disable(timeout=timeout)

    @doc(AuthAPI.auth_status)
    def auth_status(self, *, timeout: float | None = None) -> Coroutine[Any, Any, AuthStatus]:
        return self._auth.auth_status(timeout=timeout)

    @doc(AuthAPI.authenticate)
    def authenticate(
        self, name: str, password: str | Secret, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, str]:
        return self._auth.authenticate(name, password, timeout=timeout)

    @doc(AuthAPI.user_add)
    def user_add(
        self,
        name: str,
        password: str | Secret | None = None,
        *,
        no_password: bool = False,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, None]:
        return self._auth.user_add(name, password, no_password=no_password, timeout=timeout)

    @doc(AuthAPI.user_get)
    def user_get(self, name: str, *, timeout: float | None = None) -> Coroutine[Any, Any, User]:
        return self._auth.user_get(name, timeout=timeout)

    @doc(AuthAPI.user_list)
    def user_list(self, *, timeout: float | None = None) -> Coroutine[Any, Any, list[str]]:
        return self._auth.user_list(timeout=timeout)

    @doc(AuthAPI.user_delete)
    def user_delete(self, name: str, *, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        return self._auth.user_delete(name, timeout=timeout)

    @doc(AuthAPI.user_change_password)
    def user_change_password(
        self, name: str, password: str | Secret, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        return self._auth.user_change_password(name, password, timeout=timeout)

    @doc(AuthAPI.user_grant_role)
    def user_grant_role(
        self, user: str, role: str, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        return self._auth.user_grant_role(user, role, timeout=timeout)

    @doc(AuthAPI.user_revoke_role)
    def user_revoke_role(
        self, user: str, role: str, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        return self._auth.user_revoke_role(user, role, timeout=timeout)

    @doc(AuthAPI.role_add)
    def role_add(self, name: str, *, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        return self._auth.role_add(name, timeout=timeout)

    @doc(AuthAPI.role_get)
    def role_get(self, name: str, *, timeout: float | None = None) -> Coroutine[Any, Any, Role]:
        return self._auth.role_get(name, timeout=timeout)

    @doc(AuthAPI.role_list)
    def role_list(self, *, timeout: float | None = None) -> Coroutine[Any, Any, list[str]]:
        return self._auth.role_list(timeout=timeout)

    @doc(AuthAPI.role_delete)
    def role_delete(self, name: str, *, timeout: float | None = None) -> Coroutine[Any, Any, None]:
        return self._auth.role_delete(name, timeout=timeout)

    @doc(AuthAPI.role_grant_permission)
    def role_grant_permission(
        self,
        role: str,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        perm: Permission | str = Permission.READWRITE,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, None]:
        return self._auth.role_grant_permission(
            role,
            key,
            prefix=prefix,
            range_end=range_end,
            from_key=from_key,
            perm=perm,
            timeout=timeout,
        )

    @doc(AuthAPI.role_revoke_permission)
    def role_revoke_permission(
        self,
        role: str,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, None]:
        return self._auth.role_revoke_permission(
            role, key, prefix=prefix, range_end=range_end, from_key=from_key, timeout=timeout
        )

    # -- recipe shortcuts (aetcd/_shortcuts.py: each imports its recipe on first use)

    @doc(_shortcuts.session)
    def session(self, ttl: int = _shortcuts.DEFAULT_SESSION_TTL) -> Session:
        return _shortcuts.session(self, ttl)

    @doc(_shortcuts.lock)
    def lock(
        self,
        name: str | bytes,
        *,
        ttl: int = _shortcuts.DEFAULT_LOCK_TTL,
        timeout: float | None = None,
        session: Session | None = None,
    ) -> Lock:
        return _shortcuts.lock(self, name, ttl, timeout, session)

    @doc(_shortcuts.election)
    def election(
        self,
        name: str | bytes,
        *,
        ttl: int = _shortcuts.DEFAULT_ELECTION_TTL,
        session: Session | None = None,
    ) -> Election:
        return _shortcuts.election(self, name, ttl, session)

    @doc(_shortcuts.heartbeat)
    def heartbeat(self, key: str | bytes, value: str | bytes = b"", *, ttl: int = 5) -> Heartbeat:
        return _shortcuts.heartbeat(self, key, value, ttl)

    @doc(_shortcuts.register)
    def register(
        self, service: str, addr: str, *, ttl: int = 10, metadata: object = None
    ) -> Registration:
        return _shortcuts.register(self, service, addr, ttl, metadata)

    @doc(_shortcuts.discover)
    def discover(self, service: str) -> Discovery:
        return _shortcuts.discover(self, service)

    @doc(_shortcuts.config)
    def config(
        self, prefix: str | bytes, *, decode: Callable[[bytes], object] | None = None
    ) -> ConfigMirror:
        return _shortcuts.config(self, prefix, decode)

    def _idle_sessions(self) -> _IdleSessions:
        """The idle private sessions of this client's locks and elections.

        Created on first use; ``close()`` retires them (and cancels their timers).
        """
        idle = self._idle
        if idle is None:
            from .recipes.session import _IdleSessions

            idle = self._idle = _IdleSessions()
            if self._t.state is State.CLOSED:
                idle.clear()  # the stack has already been unwound
            else:
                self._stack.callback(idle.clear)
        return idle
