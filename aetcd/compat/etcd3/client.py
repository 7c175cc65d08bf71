"""``Etcd3Client``: python-etcd3 0.12's client interface on top of :mod:`aetcd.sync`.

The method names, arguments and return shapes are python-etcd3's; what runs
underneath is aetcd (retries, failover, token refresh, watch resumption).
Differences where python-etcd3 is buggy are listed in ``docs/migration.md``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

import aetcd
from aetcd import sync
from aetcd.config import DEFAULT_TIMEOUT

from . import exceptions
from .events import Event, new_event
from .leases import Lease, _Refreshed
from .locks import Lock
from .members import Member
from .transactions import Transactions
from .utils import lease_to_id, prefix_range_end, to_bytes

__all__ = [
    "Alarm",
    "Etcd3Client",
    "KVMetadata",
    "Lease",
    "Lock",
    "Member",
    "Status",
    "client",
]

_TRANSLATED: dict[grpc.StatusCode, type[exceptions.Etcd3Exception]] = {
    grpc.StatusCode.INTERNAL: exceptions.InternalServerError,
    grpc.StatusCode.UNAVAILABLE: exceptions.ConnectionFailedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: exceptions.ConnectionTimeoutError,
    grpc.StatusCode.FAILED_PRECONDITION: exceptions.PreconditionFailedError,
}


def _translated(exc: aetcd.EtcdError) -> Exception:
    """python-etcd3's exception for an aetcd error (``grpc.RpcError`` if it had none)."""
    if isinstance(exc, aetcd.DeadlineExceededError):
        return exceptions.ConnectionTimeoutError()
    if isinstance(exc, aetcd.ConnectionFailedError | aetcd.UnavailableError):
        return exceptions.ConnectionFailedError()
    code = exc.code
    if code is None:
        return exc  # caller's error, raised before any I/O: kept as is
    cls = _TRANSLATED.get(code)
    if cls is not None:
        return cls()
    return exceptions.RpcError(code, exc.message)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except aetcd.EtcdError as exc:
        new = _translated(exc)
        if new is exc:
            raise
        raise new from exc


class KVMetadata:
    """A key's metadata as python-etcd3 returns it next to the value."""

    def __init__(self, keyvalue: aetcd.KeyValue, header: aetcd.ResponseHeader) -> None:
        self.key = keyvalue.key
        self.create_revision = keyvalue.create_revision
        self.mod_revision = keyvalue.mod_revision
        self.version = keyvalue.version
        self.lease_id = keyvalue.lease
        self.response_header = header


class Status:
    """The answering member's status (``client.status()``)."""

    def __init__(
        self, version: str, db_size: int, leader: Member | None, raft_index: int, raft_term: int
    ) -> None:
        self.version = version
        self.db_size = db_size
        self.leader = leader
        self.raft_index = raft_index
        self.raft_term = raft_term


class Alarm:
    """An active alarm: ``alarm_type`` (an int) and ``member_id``."""

    def __init__(self, alarm_type: int, member_id: int) -> None:
        self.alarm_type = alarm_type
        self.member_id = member_id


_SORT_ORDER = {
    None: None,
    "ascend": aetcd.SortOrder.ASCEND,
    "descend": aetcd.SortOrder.DESCEND,
}
_SORT_TARGET = {
    None: None,
    "key": aetcd.SortTarget.KEY,
    "version": aetcd.SortTarget.VERSION,
    "create": aetcd.SortTarget.CREATE,
    "mod": aetcd.SortTarget.MOD,
    "value": aetcd.SortTarget.VALUE,
}
_FILTERS = {0: aetcd.WatchFilter.NOPUT, 1: aetcd.WatchFilter.NODELETE}


class _Response:
    """A watch response: ``header`` and python-etcd3 ``events`` (one server batch)."""

    def __init__(self, header: aetcd.ResponseHeader, events: list[Event]) -> None:
        self.header = header
        self.events = events


class Etcd3Client:
    """python-etcd3's client (see the module doc); use :func:`client` to make one."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 2379,
        ca_cert: str | None = None,
        cert_key: str | None = None,
        cert_cert: str | None = None,
        timeout: float | None = None,
        user: str | None = None,
        password: str | None = None,
        grpc_options: Iterable[tuple[str, Any]] | None = None,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        tls = None
        if ca_cert is not None:
            tls = aetcd.TLS(ca=ca_cert, cert=cert_cert, key=cert_key)
        eps = list(endpoints) if endpoints is not None else [f"{host}:{port}"]
        self._setup(eps, tls, timeout, user, password)

    def _setup(
        self,
        endpoints: list[str],
        tls: aetcd.TLS | None,
        timeout: float | None,
        user: str | None,
        password: str | None,
    ) -> None:
        if (user is None) != (password is None):
            # python-etcd3 raised a plain Exception here, before any I/O.
            raise Exception(
                "if using authentication credentials both user and password must be specified."
            )
        self.timeout = timeout
        self._client = sync.Client(
            endpoints,
            username=user,
            password=password,
            tls=tls,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )
        if user is not None:
            # python-etcd3 authenticated here: wrong credentials fail at construction.
            try:
                with _errors():
                    self._client.connect()
            except BaseException:
                self._client.close()
                raise
        self.transactions = Transactions()
        self._watches: dict[int, Callable[[], None]] = {}
        self._watch_ids = 0
        self._watch_lock = threading.Lock()

    @property
    def aetcd_client(self) -> sync.Client:
        """The :class:`aetcd.sync.Client` underneath (for code moving on to aetcd)."""
        return self._client

    def close(self) -> None:
        """Cancel the watches and close the connection."""
        for cancel in list(self._watches.values()):
            cancel()
        self._client.close()

    def __enter__(self) -> Etcd3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- KV ------------------------------------------------------------------------

    def _range(self, key: str | bytes, **kwargs: Any) -> aetcd.GetResult:
        opts: dict[str, Any] = {}
        for name in ("limit", "revision", "keys_only", "count_only", "serializable"):
            if name in kwargs and kwargs[name] is not None:
                opts[name] = kwargs[name]
        for name in ("min_mod_revision", "max_mod_revision", "min_create_revision",
                     "max_create_revision"):  # fmt: skip
            if kwargs.get(name):
                opts[name] = kwargs[name]
        order = kwargs.get("sort_order")
        target = kwargs.get("sort_target", "key")
        if order is not None or "sort_target" in kwargs:
            opts["sort_order"] = _SORT_ORDER[order]
            opts["sort_target"] = _SORT_TARGET[target]
        if kwargs.get("range_end") is not None:
            opts["range_end"] = kwargs["range_end"]
        with _errors():
            return self._client.get(key, **opts)

    def get_response(self, key: str | bytes, **kwargs: Any) -> aetcd.GetResult:
        """The whole range result for *key*."""
        return self._range(key, **kwargs)

    def get(self, key: str | bytes, **kwargs: Any) -> tuple[bytes | None, KVMetadata | None]:
        """``(value, metadata)`` of *key*, or ``(None, None)`` if it does not exist."""
        res = self._range(key, **kwargs)
        if not res.kvs:
            return None, None
        kv = res.kvs[0]
        return kv.value, KVMetadata(kv, res.header)

    def _pairs(self, res: aetcd.GetResult) -> Iterator[tuple[bytes, KVMetadata]]:
        for kv in res.kvs:
            yield kv.value, KVMetadata(kv, res.header)

    def get_prefix_response(self, key_prefix: str | bytes, **kwargs: Any) -> aetcd.GetResult:
        """The whole range result for every key under *key_prefix*."""
        end = prefix_range_end(to_bytes(key_prefix))
        return self._range(key_prefix, range_end=end, **kwargs)

    def get_prefix(
        self, key_prefix: str | bytes, **kwargs: Any
    ) -> Iterator[tuple[bytes, KVMetadata]]:
        """``(value, metadata)`` of every key under *key_prefix*."""
        return self._pairs(self.get_prefix_response(key_prefix, **kwargs))

    def get_range_response(
        self, range_start: str | bytes, range_end: str | bytes, **kwargs: Any
    ) -> aetcd.GetResult:
        """The whole range result for ``[range_start, range_end)``."""
        return self._range(range_start, range_end=range_end, **kwargs)

    def get_range(
        self, range_start: str | bytes, range_end: str | bytes, **kwargs: Any
    ) -> Iterator[tuple[bytes, KVMetadata]]:
        """``(value, metadata)`` of every key in ``[range_start, range_end)``."""
        return self._pairs(self.get_range_response(range_start, range_end, **kwargs))

    def get_all_response(self, **kwargs: Any) -> aetcd.GetResult:
        """The whole range result for every key."""
        return self._range(b"\0", range_end=b"\0", **kwargs)

    def get_all(self, **kwargs: Any) -> Iterator[tuple[bytes, KVMetadata]]:
        """``(value, metadata)`` of every key."""
        return self._pairs(self.get_all_response(**kwargs))

    def put(
        self, key: str | bytes, value: str | bytes, lease: Any = None, prev_kv: bool = False
    ) -> aetcd.PutResult:
        """Store *value* under *key*."""
        with _errors():
            return self._client.put(key, value, lease=lease_to_id(lease) or None, prev_kv=prev_kv)

    def put_if_not_exists(self, key: str | bytes, value: str | bytes, lease: Any = None) -> bool:
        """Store *value* only if *key* does not exist; True if it was stored."""
        ok, _ = self.transaction(
            compare=[self.transactions.create(key) == 0],
            success=[self.transactions.put(key, value, lease=lease)],
            failure=[],
        )
        return ok

    def replace(self, key: str | bytes, initial_value: str | bytes, new_value: str | bytes) -> bool:
        """Set *key* to *new_value* only if it holds *initial_value*; True if it did."""
        ok, _ = self.transaction(
            compare=[self.transactions.value(key) == initial_value],
            success=[self.transactions.put(key, new_value)],
            failure=[],
        )
        return ok

    def delete(
        self, key: str | bytes, prev_kv: bool = False, return_response: bool = False
    ) -> bool | aetcd.DeleteResult:
        """Delete *key*; True if it existed (the whole result with ``return_response``)."""
        with _errors():
            res = self._client.delete(key, prev_kv=prev_kv)
        return res if return_response else res.deleted >= 1

    def delete_prefix(self, prefix: str | bytes) -> aetcd.DeleteResult:
        """Delete every key under *prefix*."""
        with _errors():
            return self._client.delete(prefix, range_end=prefix_range_end(to_bytes(prefix)))

    def transaction(
        self,
        compare: Iterable[aetcd.Compare],
        success: Iterable[aetcd.Op] | None = None,
        failure: Iterable[aetcd.Op] | None = None,
    ) -> tuple[bool, list[Any]]:
        """``(succeeded, responses)``; a get's response is a list of ``(value, metadata)``."""
        with _errors():
            res = self._client.txn(compare, success or (), failure or ())
        return res.succeeded, [self._txn_item(r) for r in res.responses]

    def _txn_item(self, r: Any) -> Any:
        if isinstance(r, aetcd.GetResult):
            return list(self._pairs(r))
        return r

    # -- cluster and maintenance --------------------------------------------------

    def status(self) -> Status:
        """The answering member's status, with the leader as a :class:`Member`."""
        with _errors():
            st = self._client.status()
        leader = next((m for m in self.members if m.id == st.leader), None)
        return Status(st.version, st.db_size, leader, st.raft_index, st.raft_term)

    def _member(self, m: aetcd.Member) -> Member:
        return Member(m.id, m.name, m.peer_urls, m.client_urls, etcd_client=self)

    @property
    def members(self) -> Iterator[Member]:
        """The cluster's members."""
        with _errors():
            ms = self._client.members()
        return (self._member(m) for m in ms)

    def add_member(self, urls: list[str]) -> Member:
        """Add a member with peer *urls*."""
        with _errors():
            return self._member(self._client.member_add(urls))

    def remove_member(self, member_id: int) -> None:
        """Remove the member *member_id*."""
        with _errors():
            self._client.member_remove(member_id)

    def update_member(self, member_id: int, peer_urls: list[str]) -> None:
        """Change a member's peer URLs."""
        with _errors():
            self._client.member_update(member_id, peer_urls)

    def compact(self, revision: int, physical: bool = False) -> None:
        """Discard history before *revision*."""
        with _errors():
            self._client.compact(revision, physical=physical)

    def defragment(self) -> None:
        """Defragment the answering member's backend."""
        with _errors():
            self._client.defragment()

    def hash(self) -> int:
        """The hash of the answering member's key-value store."""
        with _errors():
            return self._client.hash_kv().hash

    def create_alarm(self, member_id: int = 0) -> list[Alarm]:
        """Not supported: etcd raises alarms itself (NOSPACE, CORRUPT)."""
        raise NotImplementedError("aetcd does not raise alarms by hand; etcd raises them")

    def list_alarms(self, member_id: int = 0, alarm_type: str = "none") -> Iterator[Alarm]:
        """The active alarms (of *member_id* if not 0)."""
        with _errors():
            alarms = self._client.alarms()
        return (Alarm(int(a.type), a.member_id) for a in alarms if member_id in (0, a.member_id))

    def disarm_alarm(self, member_id: int = 0) -> list[Alarm]:
        """Disarm the active alarms (of *member_id* if not 0)."""
        with _errors():
            active = [a for a in self._client.alarms() if member_id in (0, a.member_id)]
            left = self._client.disarm_alarms(*active) if active else []
        return [Alarm(int(a.type), a.member_id) for a in left]

    def snapshot(self, file_obj: Any) -> None:
        """Write a snapshot of the backend to the binary file object *file_obj*."""
        with _errors(), self._client.snapshot() as stream:
            for chunk in stream:
                file_obj.write(chunk)

    # -- leases and locks -----------------------------------------------------------

    def lease(self, ttl: int, lease_id: int | None = None) -> Lease:
        """Grant a lease of *ttl* seconds (not kept alive: call ``refresh()``)."""
        with _errors():
            granted = self._client.grant(ttl, id=lease_id or 0)
        return Lease(granted.id, granted.ttl, etcd_client=self)

    def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease."""
        with _errors():
            self._client.revoke(lease_id)

    def refresh_lease(self, lease_id: int) -> list[Any]:
        """Renew a lease once."""
        with _errors():
            ttl = self._client.keepalive_once(lease_id)
        return [_Refreshed(lease_id, ttl)]

    def get_lease_info(self, lease_id: int, *, keys: bool = True) -> aetcd.LeaseInfo:
        """The server's view of a lease (``ttl``, ``granted_ttl``, ``keys``)."""
        with _errors():
            return self._client.time_to_live(lease_id, keys=keys)

    def lock(self, name: str, ttl: int = 60) -> Lock:
        """A :class:`Lock` named *name* (python-etcd3's layout: ``/locks/<name>``)."""
        return Lock(name, ttl=ttl, etcd_client=self)

    # -- watches --------------------------------------------------------------------

    def _watch_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if kwargs.get("range_end") is not None:
            opts["range_end"] = kwargs["range_end"]
        if kwargs.get("start_revision") is not None:
            opts["start_revision"] = kwargs["start_revision"]
        if kwargs.get("progress_notify"):
            opts["progress_notify"] = True
        if kwargs.get("prev_kv"):
            opts["prev_kv"] = True
        filters = kwargs.get("filters")
        if filters:
            opts["filters"] = [_FILTERS[int(f)] for f in filters]
        return opts

    def _open_watch(self, key: str | bytes, kwargs: dict[str, Any]) -> sync.Watch:
        with _errors():
            w = self._client.watch(key, **self._watch_kwargs(kwargs))
            w.start()
        return w

    def _register(self, cancel: Callable[[], None]) -> int:
        with self._watch_lock:
            self._watch_ids += 1
            self._watches[self._watch_ids] = cancel
            return self._watch_ids

    def add_watch_callback(
        self, key: str | bytes, callback: Callable[[Any], None], **kwargs: Any
    ) -> int:
        """Call ``callback(response)`` for each watch response (or with the error
        that ended the watch) from a thread of this watch; returns the watch id."""
        w = self._open_watch(key, kwargs)

        def run() -> None:
            try:
                for response in self._responses(w):
                    callback(response)
            except Exception as exc:  # the error ends the watch; the callback is told
                callback(exc)

        wid = self._register(w.cancel)
        threading.Thread(target=run, name=f"etcd3-watch-{wid}", daemon=True).start()
        return wid

    def add_watch_prefix_callback(
        self, key_prefix: str | bytes, callback: Callable[[Any], None], **kwargs: Any
    ) -> int:
        """:meth:`add_watch_callback` for every key under *key_prefix*."""
        kwargs["range_end"] = prefix_range_end(to_bytes(key_prefix))
        return self.add_watch_callback(key_prefix, callback, **kwargs)

    def cancel_watch(self, watch_id: int) -> None:
        """Stop the watch *watch_id*."""
        with self._watch_lock:
            cancel = self._watches.pop(watch_id, None)
        if cancel is not None:
            with contextlib.suppress(aetcd.ClientClosedError):
                cancel()

    def _responses(self, w: sync.Watch) -> Iterator[_Response]:
        try:
            for r in w.responses():
                if r.events:
                    yield _Response(r.header, [new_event(e) for e in r.events])
        except aetcd.CompactedError as exc:
            raise exceptions.RevisionCompactedError(exc.compact_revision or 0) from exc
        except aetcd.EtcdError as exc:
            new = _translated(exc)
            if new is exc:
                raise
            raise new from exc

    def watch_response(
        self, key: str | bytes, **kwargs: Any
    ) -> tuple[Iterator[_Response], Callable[[], None]]:
        """``(responses_iterator, cancel)``; the events of one server response stay together."""
        w = self._open_watch(key, kwargs)
        wid = self._register(w.cancel)

        def cancel() -> None:
            self.cancel_watch(wid)

        return self._responses(w), cancel

    def watch(self, key: str | bytes, **kwargs: Any) -> tuple[Iterator[Event], Callable[[], None]]:
        """``(events_iterator, cancel)`` for *key*."""
        responses, cancel = self.watch_response(key, **kwargs)
        return (e for r in responses for e in r.events), cancel

    def watch_prefix_response(
        self, key_prefix: str | bytes, **kwargs: Any
    ) -> tuple[Iterator[_Response], Callable[[], None]]:
        """:meth:`watch_response` for every key under *key_prefix*."""
        kwargs["range_end"] = prefix_range_end(to_bytes(key_prefix))
        return self.watch_response(key_prefix, **kwargs)

    def watch_prefix(
        self, key_prefix: str | bytes, **kwargs: Any
    ) -> tuple[Iterator[Event], Callable[[], None]]:
        """:meth:`watch` for every key under *key_prefix*."""
        kwargs["range_end"] = prefix_range_end(to_bytes(key_prefix))
        return self.watch(key_prefix, **kwargs)

    def watch_once_response(
        self, key: str | bytes, timeout: float | None = None, **kwargs: Any
    ) -> _Response:
        """The first response for *key*; :class:`exceptions.WatchTimedOut` after *timeout*."""
        w = self._open_watch(key, kwargs)
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def first() -> None:
            try:
                out.put(next(self._responses(w)))
            except BaseException as exc:
                out.put(exc)

        threading.Thread(target=first, daemon=True).start()
        try:
            item = out.get(timeout=timeout)
        except queue.Empty:
            raise exceptions.WatchTimedOut() from None
        finally:
            with contextlib.suppress(aetcd.ClientClosedError):
                w.cancel()
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    def watch_once(self, key: str | bytes, timeout: float | None = None, **kwargs: Any) -> Event:
        """The first event for *key*; :class:`exceptions.WatchTimedOut` after *timeout*."""
        return self.watch_once_response(key, timeout=timeout, **kwargs).events[0]

    def watch_prefix_once_response(
        self, key_prefix: str | bytes, timeout: float | None = None, **kwargs: Any
    ) -> _Response:
        """:meth:`watch_once_response` for every key under *key_prefix*."""
        kwargs["range_end"] = prefix_range_end(to_bytes(key_prefix))
        return self.watch_once_response(key_prefix, timeout=timeout, **kwargs)

    def watch_prefix_once(
        self, key_prefix: str | bytes, timeout: float | None = None, **kwargs: Any
    ) -> Event:
        """:meth:`watch_once` for every key under *key_prefix*."""
        kwargs["range_end"] = prefix_range_end(to_bytes(key_prefix))
        return self.watch_once(key_prefix, timeout=timeout, **kwargs)

    def _wait_delete(self, key: str, start_revision: int, timeout: float | None) -> bool:
        """Wait until *key* is deleted at or after *start_revision*; False on timeout."""
        try:
            self.watch_once(key, timeout=timeout, start_revision=start_revision, filters=[0])
        except exceptions.WatchTimedOut:
            return False
        return True


def client(
    host: str = "localhost",
    port: int = 2379,
    ca_cert: str | None = None,
    cert_key: str | None = None,
    cert_cert: str | None = None,
    timeout: float | None = None,
    user: str | None = None,
    password: str | None = None,
    grpc_options: Iterable[tuple[str, Any]] | None = None,
    endpoints: Iterable[str] | None = None,
) -> Etcd3Client:
    """An :class:`Etcd3Client` (``endpoints=["h1:2379", ...]`` for several, with failover)."""
    return Etcd3Client(
        host=host,
        port=port,
        ca_cert=ca_cert,
        cert_key=cert_key,
        cert_cert=cert_cert,
        timeout=timeout,
        user=user,
        password=password,
        grpc_options=grpc_options,
        endpoints=endpoints,
    )
