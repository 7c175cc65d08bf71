"""The recipes of :mod:`aetcd.recipes` as ``with`` blocks and blocking calls.

Each class here wraps the async recipe of the same name and runs it on the
client's loop thread, so the protocol (key layout, ordering, cleanup on
interruption) is exactly the async one.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from .. import recipes as _r
from ..ops import Compare, LeaseLike
from ..recipes.config import DEFAULT_MAX_PENDING, ConfigChange
from ..recipes.contrib import DEFAULT_CONTRIB_TTL
from ..recipes.discovery import DEFAULT_REGISTRATION_TTL, Instance
from ..recipes.election import DEFAULT_ELECTION_TTL
from ..recipes.heartbeat import DEFAULT_HEARTBEAT_TTL
from ..recipes.lock import DEFAULT_LOCK_TTL
from ..recipes.session import DEFAULT_SESSION_TTL
from ..recipes.stm import DEFAULT_STM_RETRIES, Isolation
from ..types import KeyValue
from ._runner import Bridged, bridge
from .client import Client, Iterate, Lease

__all__ = [
    "STM",
    "Barrier",
    "ConfigMirror",
    "Discovery",
    "DoubleBarrier",
    "Election",
    "Heartbeat",
    "Isolation",
    "Lock",
    "PriorityQueue",
    "Queue",
    "RWLock",
    "RWMutex",
    "Registration",
    "Session",
    "is_alive",
    "stm",
]

T = TypeVar("T")


def _target(client_or_session: Client | Session) -> Any:
    if not isinstance(client_or_session, Client | Session):
        raise TypeError(
            "expected an aetcd.sync.Client or aetcd.sync.recipes.Session, "
            f"not {type(client_or_session).__name__}"
        )
    return client_or_session._aio


class _Block(Bridged):
    """A recipe object that is also a ``with`` block (``async with`` on the loop)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(self._aio).replace("<aetcd.", "<aetcd.sync.", 1)

    def __enter__(self) -> Self:
        self._runner.run(self._aio.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._runner.run(self._aio.__aexit__(exc_type, exc, tb))

    def _get(self, name: str) -> Any:
        """Read a property that consults loop-owned state, on the loop thread."""
        return self._runner.call(getattr, self._aio, name)


class Session(_Block):
    """A lease kept alive while the block runs (see :class:`aetcd.recipes.Session`)."""

    __slots__ = ()
    _aio: _r.Session

    def __init__(self, client: Client, *, ttl: int = DEFAULT_SESSION_TTL) -> None:
        super().__init__(client._runner, _r.Session(client._aio, ttl=ttl))

    @property
    def client(self) -> Any:
        """The async client behind the session."""
        return self._aio.client

    @property
    def ttl(self) -> int:
        """The lease TTL in seconds."""
        return self._aio.ttl

    @property
    def lease(self) -> Lease:
        """The session's lease (``RuntimeError`` before the session is open)."""
        return Lease(self._runner, self._aio.lease)

    @property
    def lease_id(self) -> int:
        """The id of the session's lease."""
        return self._aio.lease_id

    @property
    def alive(self) -> bool:
        """False once the lease is lost."""
        return bool(self._get("alive"))

    def open(self) -> Self:
        """Grant the lease and start keeping it alive (what entering ``with`` does)."""
        self._runner.run(self._aio.open())
        return self

    close = bridge(_r.Session.close)
    lost = bridge(_r.Session.lost)


class Lock(_Block):
    """A distributed mutex (see :class:`aetcd.recipes.Lock`; Go ``concurrency.Mutex`` layout).

    ``with client.lock("name", timeout=5) as lock:`` raises
    :class:`aetcd.LockTimeoutError` rather than running the body unlocked.
    """

    __slots__ = ()
    _aio: _r.Lock

    def __init__(
        self,
        client_or_session: Client | Session,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_LOCK_TTL,
        timeout: float | None = None,
    ) -> None:
        target = _target(client_or_session)
        super().__init__(client_or_session._runner, _r.Lock(target, name, ttl=ttl, timeout=timeout))

    @property
    def name(self) -> bytes:
        """The lock's name (its keys live under ``name + b"/"``)."""
        return self._aio.name

    @property
    def key(self) -> bytes:
        """This holder's key while held."""
        return self._aio.key

    @property
    def revision(self) -> int:
        """The fencing token: the create revision of :attr:`key`."""
        return self._aio.revision

    @property
    def held(self) -> bool:
        """Whether this handle believes it holds the lock."""
        return bool(self._get("held"))

    def guard(self) -> Compare:
        """The compare that holds only while this handle owns the lock."""
        return self._aio.guard()

    acquire = bridge(_r.Lock.acquire)
    try_acquire = bridge(_r.Lock.try_acquire)
    release = bridge(_r.Lock.release)
    is_owner = bridge(_r.Lock.is_owner)
    lost = bridge(_r.Lock.lost)


class Election(Bridged):
    """One participant's handle on an election (see :class:`aetcd.recipes.Election`)."""

    __slots__ = ()
    _aio: _r.Election

    def __init__(
        self,
        client_or_session: Client | Session,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_ELECTION_TTL,
    ) -> None:
        target = _target(client_or_session)
        super().__init__(client_or_session._runner, _r.Election(target, name, ttl=ttl))

    def __repr__(self) -> str:
        return repr(self._aio).replace("<aetcd.", "<aetcd.sync.", 1)

    @property
    def name(self) -> bytes:
        """The election's name."""
        return self._aio.name

    @property
    def key(self) -> bytes | None:
        """This participant's key while leader."""
        return self._aio.key

    @property
    def revision(self) -> int:
        """The create revision of :attr:`key` while leader."""
        return self._aio.revision

    @property
    def is_leader(self) -> bool:
        """Whether this participant won and has not resigned or lost its session."""
        return bool(self._runner.call(getattr, self._aio, "is_leader"))

    def guard(self) -> Compare:
        """The compare that holds only while this participant is leader."""
        return self._aio.guard()

    campaign = bridge(_r.Election.campaign)
    proclaim = bridge(_r.Election.proclaim)
    resign = bridge(_r.Election.resign)
    leader = bridge(_r.Election.leader)

    def observe(self) -> Iterate[KeyValue]:
        """Each new leader value, in order, as a blocking iterator (``close()`` it to stop)."""
        return Iterate(self._runner, self._aio.observe())


class Heartbeat(_Block):
    """*key* exists while this process is alive (see :class:`aetcd.recipes.Heartbeat`)."""

    __slots__ = ()
    _aio: _r.Heartbeat

    def __init__(
        self,
        client: Client,
        key: str | bytes,
        value: str | bytes = b"",
        *,
        ttl: int = DEFAULT_HEARTBEAT_TTL,
    ) -> None:
        super().__init__(client._runner, _r.Heartbeat(client._aio, key, value, ttl=ttl))

    @property
    def alive(self) -> bool:
        """Whether the key is currently up."""
        return bool(self._get("alive"))

    @property
    def lease_id(self) -> int:
        """The current lease's id."""
        return int(self._get("lease_id"))

    lost = bridge(_r.Heartbeat.lost)
    restored = bridge(_r.Heartbeat.restored)


class Registration(Heartbeat):
    """*addr* registered under *service* while alive (see :class:`aetcd.recipes.Registration`)."""

    __slots__ = ()

    def __init__(
        self,
        client: Client,
        service: str | bytes,
        addr: str,
        *,
        ttl: int = DEFAULT_REGISTRATION_TTL,
        metadata: Any = None,
    ) -> None:
        Bridged.__init__(
            self,
            client._runner,
            _r.Registration(client._aio, service, addr, ttl=ttl, metadata=metadata),
        )


class Discovery(_Block):
    """A live view of a service's instances (see :class:`aetcd.recipes.Discovery`)."""

    __slots__ = ()
    _aio: _r.Discovery

    def __init__(self, client: Client, service: str | bytes) -> None:
        super().__init__(client._runner, _r.Discovery(client._aio, service))

    @property
    def instances(self) -> dict[str, Instance]:
        """The instances, keyed by address (a copy)."""
        return dict(self._get("instances"))

    @property
    def revision(self) -> int:
        """The revision the view reflects."""
        return self._aio.revision

    def updates(self) -> Iterate[dict[str, Instance]]:
        """Each new set of instances, as a blocking iterator."""
        return Iterate(self._runner, self._runner.call(self._aio.updates))

    wait_for = bridge(_r.Discovery.wait_for)


class ConfigMirror(_Block, Mapping[str, Any]):
    """A hot-reloaded read-only mirror of a prefix (see :class:`aetcd.recipes.ConfigMirror`).

    Reads are served from the mirror in memory, without I/O.
    """

    __slots__ = ()
    _aio: _r.ConfigMirror

    def __init__(
        self,
        client: Client,
        prefix: str | bytes,
        *,
        decode: Callable[[bytes], object] | None = None,
    ) -> None:
        super().__init__(client._runner, _r.ConfigMirror(client._aio, prefix, decode=decode))

    def __getitem__(self, key: str) -> Any:
        return self._aio[key]

    def __len__(self) -> int:
        return len(self._aio)

    def __iter__(self) -> Iterator[str]:
        return iter(self._runner.call(list, self._aio))

    @property
    def revision(self) -> int:
        """The revision the mirror reflects."""
        return self._aio.revision

    @property
    def invalid(self) -> Mapping[str, Exception]:
        """Keys whose value *decode* refused, with the error."""
        return dict(self._get("invalid"))

    wait_for = bridge(_r.ConfigMirror.wait_for)

    def changes(self, *, max_pending: int = DEFAULT_MAX_PENDING) -> Iterate[ConfigChange]:
        """An ordered blocking iterator of :class:`aetcd.recipes.ConfigChange`."""
        changes = self._runner.call(lambda: self._aio.changes(max_pending=max_pending))
        return Iterate(self._runner, changes)


class RWMutex:
    """A distributed readers-writer lock (see :class:`aetcd.recipes.RWMutex`)."""

    __slots__ = ("_aio", "_runner")

    def __init__(
        self,
        client_or_session: Client | Session,
        name: str | bytes,
        *,
        ttl: int = DEFAULT_CONTRIB_TTL,
    ) -> None:
        self._runner = client_or_session._runner
        self._aio = _r.RWMutex(_target(client_or_session), name, ttl=ttl)

    def read_lock(self, *, timeout: float | None = None) -> RWLock:
        """A shared holder: ``with rw.read_lock():``."""
        return RWLock(self._runner, self._aio.read_lock(timeout=timeout))

    def write_lock(self, *, timeout: float | None = None) -> RWLock:
        """An exclusive holder: ``with rw.write_lock():``."""
        return RWLock(self._runner, self._aio.write_lock(timeout=timeout))


class RWLock(_Block):
    """One holder of an :class:`RWMutex`."""

    __slots__ = ()
    _aio: _r.RWLock

    @property
    def key(self) -> bytes:
        """This holder's key while held."""
        return self._aio.key

    @property
    def revision(self) -> int:
        """The create revision of :attr:`key`."""
        return self._aio.revision

    @property
    def held(self) -> bool:
        """Whether this holder holds."""
        return bool(self._get("held"))

    def guard(self) -> Compare:
        """The compare that holds only while this holder holds."""
        return self._aio.guard()

    acquire = bridge(_r.RWLock.acquire)
    release = bridge(_r.RWLock.release)
    lost = bridge(_r.RWLock.lost)


class Barrier(_Block):
    """Blocks waiters while its key exists (see :class:`aetcd.recipes.Barrier`)."""

    __slots__ = ()
    _aio: _r.Barrier

    def __init__(self, client: Client, name: str | bytes) -> None:
        super().__init__(client._runner, _r.Barrier(client._aio, name))

    def hold(self, *, lease: LeaseLike | None = None) -> bool:
        """Raise the barrier; False if it was already held."""
        return self._runner.run(self._aio.hold(lease=lease))

    release = bridge(_r.Barrier.release)
    wait = bridge(_r.Barrier.wait)


class DoubleBarrier(_Block):
    """*count* participants enter and leave together (see :class:`aetcd.recipes.DoubleBarrier`)."""

    __slots__ = ()
    _aio: _r.DoubleBarrier

    def __init__(
        self,
        client_or_session: Client | Session,
        name: str | bytes,
        count: int,
        *,
        ttl: int = DEFAULT_CONTRIB_TTL,
    ) -> None:
        target = _target(client_or_session)
        super().__init__(client_or_session._runner, _r.DoubleBarrier(target, name, count, ttl=ttl))

    @property
    def key(self) -> bytes | None:
        """This participant's key while entered."""
        return self._aio.key

    enter = bridge(_r.DoubleBarrier.enter)
    leave = bridge(_r.DoubleBarrier.leave)


class Queue(Bridged):
    """A FIFO queue (see :class:`aetcd.recipes.Queue`)."""

    __slots__ = ()
    _aio: _r.Queue

    def __init__(self, client: Client, name: str | bytes) -> None:
        super().__init__(client._runner, _r.Queue(client._aio, name))

    enqueue = bridge(_r.Queue.enqueue)
    dequeue = bridge(_r.Queue.dequeue)


class PriorityQueue(Bridged):
    """A queue served by priority, then FIFO (see :class:`aetcd.recipes.PriorityQueue`)."""

    __slots__ = ()
    _aio: _r.PriorityQueue

    def __init__(self, client: Client, name: str | bytes) -> None:
        super().__init__(client._runner, _r.PriorityQueue(client._aio, name))

    enqueue = bridge(_r.PriorityQueue.enqueue)
    dequeue = bridge(_r.PriorityQueue.dequeue)


def is_alive(client: Client, key: str | bytes, *, timeout: float | None = None) -> bool:
    """Whether the heartbeat *key* currently exists."""
    return client._runner.run(_r.is_alive(client._aio, key, timeout=timeout))


class STM(Bridged):
    """One attempt of an :func:`stm` transaction (see :class:`aetcd.recipes.STM`)."""

    __slots__ = ()
    _aio: _r.STM

    @property
    def attempt(self) -> int:
        """The run of the function, from 1."""
        return self._aio.attempt

    @property
    def isolation(self) -> Isolation:
        """The isolation level."""
        return self._aio.isolation

    get = bridge(_r.STM.get)
    rev = bridge(_r.STM.rev)

    def put(self, key: str | bytes, value: str | bytes, *, lease: LeaseLike | None = None) -> None:
        """Buffer a write of *value* to *key*, applied at commit."""
        self._runner.call(lambda: self._aio.put(key, value, lease=lease))

    def delete(self, key: str | bytes) -> None:
        """Buffer a delete of *key*, applied at commit."""
        self._runner.call(self._aio.delete, key)


def stm(
    client: Client,
    fn: Callable[[STM], T],
    *,
    isolation: Isolation = Isolation.SERIALIZABLE_SNAPSHOT,
    prefetch: Iterable[str | bytes] = (),
    max_retries: int = DEFAULT_STM_RETRIES,
) -> T:
    """Run ``fn(tx)`` as one transaction and return its result once committed
    (see :func:`aetcd.recipes.stm`: the same retries, isolation and failure modes).

    *fn* is a plain function; it runs in the calling thread, once per attempt.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function taking an STM, not {type(fn).__name__}")
    runner = client._runner
    # The async stm drives the attempts on the loop; each attempt is handed
    # back to this thread, which runs fn and answers through the future.
    attempts: queue.SimpleQueue[tuple[Any, asyncio.Future[Any]] | None] = queue.SimpleQueue()

    async def attempt(tx: Any) -> Any:
        answer = asyncio.get_running_loop().create_future()
        attempts.put((tx, answer))
        return await answer

    done = runner.submit(
        _r.stm(
            client._aio, attempt, isolation=isolation, prefetch=prefetch, max_retries=max_retries
        )
    )
    done.add_done_callback(lambda _: attempts.put(None))
    loop = runner.check()
    try:
        while (item := attempts.get()) is not None:
            tx, answer = item
            try:
                result: Any = fn(STM(runner, tx))
            except Exception as exc:  # handed to the async stm, which aborts and re-raises it
                loop.call_soon_threadsafe(_answer, answer, None, exc)
            else:
                loop.call_soon_threadsafe(_answer, answer, result, None)
        return done.result()  # type: ignore[no-any-return]
    except BaseException:
        if not done.done():
            done.cancel()
        raise


def _answer(answer: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if answer.done():
        return
    if exc is not None:
        answer.set_exception(exc)
    else:
        answer.set_result(result)
