"""An async face over ``aetcd.sync``, so the async behaviour tests run unchanged on
the blocking client.

Each coroutine method of the async class becomes a coroutine that runs the
blocking method in a worker thread (``asyncio.to_thread``); ``async with`` and
``async for`` run ``__enter__`` / ``__exit__`` / ``next`` there too. Blocking
handles that come back (a lease, a watch, a lock) are wrapped the same way, and
wrapped arguments are unwrapped, so every call a test makes goes through the
blocking client from a thread that is not its loop's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

import pytest

import aetcd
import aetcd.recipes
from aetcd import sync
from aetcd.sync import recipes as sync_recipes

#: blocking class -> the async class whose coroutine methods it mirrors
ASYNC_OF: dict[type, type] = {
    sync.Client: aetcd.Client,
    sync.Lease: aetcd.Lease,
    sync.Watch: aetcd.Watch,
    sync_recipes.Session: aetcd.recipes.Session,
    sync_recipes.Lock: aetcd.recipes.Lock,
    sync_recipes.Election: aetcd.recipes.Election,
    sync_recipes.Heartbeat: aetcd.recipes.Heartbeat,
    sync_recipes.Registration: aetcd.recipes.Registration,
    sync_recipes.Discovery: aetcd.recipes.Discovery,
    sync_recipes.ConfigMirror: aetcd.recipes.ConfigMirror,
    sync_recipes.RWLock: aetcd.recipes.RWLock,
    sync_recipes.Barrier: aetcd.recipes.Barrier,
    sync_recipes.DoubleBarrier: aetcd.recipes.DoubleBarrier,
    sync_recipes.Queue: aetcd.recipes.Queue,
    sync_recipes.PriorityQueue: aetcd.recipes.PriorityQueue,
}


def _awaitable(value: Any) -> bool:
    """A coroutine function, or an explicit delegator returning a ``Coroutine``."""
    if inspect.iscoroutinefunction(value):
        return True
    if not inspect.isfunction(value):
        return False
    returns = inspect.signature(value).return_annotation
    return isinstance(returns, str) and returns.startswith("Coroutine[")


def _coroutines(cls: type) -> frozenset[str]:
    return frozenset(name for name, value in inspect.getmembers(cls) if _awaitable(value))


_COROUTINES = {cls: _coroutines(acls) for cls, acls in ASYNC_OF.items()}


def wrap(obj: Any) -> Any:
    """The async face of a blocking object, or *obj* itself."""
    if type(obj) in ASYNC_OF or isinstance(obj, sync.Context | sync.Iterate):
        return AsyncFacade(obj)
    return obj


def unwrap(obj: Any) -> Any:
    return obj.sync if isinstance(obj, AsyncFacade) else obj


class AsyncFacade:
    """Looks like the async object to a test; every call goes through *obj*."""

    def __init__(self, obj: Any) -> None:
        self.sync = obj

    def __repr__(self) -> str:
        return f"<AsyncFacade {self.sync!r}>"

    def __getattr__(self, name: str) -> Any:
        if name == "aclose" and isinstance(self.sync, sync.Iterate):
            name = "close"
        if name.startswith("_") and isinstance(self.sync, sync.Client):
            # Internals a test reads (say, that no connection was opened, or the
            # token in use) are the async client's underneath.
            return getattr(self.sync._aio, name)
        attr = getattr(self.sync, name)
        if not callable(attr):
            return attr
        if name in _COROUTINES.get(type(self.sync), ()) or name == "close":

            async def call(*args: Any, **kwargs: Any) -> Any:
                args = tuple(unwrap(a) for a in args)
                kwargs = {k: unwrap(v) for k, v in kwargs.items()}
                return wrap(await asyncio.to_thread(attr, *args, **kwargs))

            return call

        def plain(*args: Any, **kwargs: Any) -> Any:
            args = tuple(unwrap(a) for a in args)
            kwargs = {k: unwrap(v) for k, v in kwargs.items()}
            return wrap(attr(*args, **kwargs))

        return plain

    def __getitem__(self, key: Any) -> Any:
        return self.sync[key]

    def __len__(self) -> int:
        return len(self.sync)

    def __iter__(self) -> Any:
        return iter(self.sync)

    async def __aenter__(self) -> Any:
        return wrap(await asyncio.to_thread(self.sync.__enter__))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.sync.__exit__, exc_type, exc, tb)

    def __aiter__(self) -> AsyncFacade:
        return self

    async def __anext__(self) -> Any:
        item = await asyncio.to_thread(next, self.sync, _END)
        if item is _END:
            raise StopAsyncIteration
        return wrap(item)


_END = object()


class SyncAetcd:
    """Stands in for the ``aetcd`` module of a shared test module: ``Client(...)`` is a
    facade over a new ``aetcd.sync.Client``; every other name is aetcd's own."""

    @staticmethod
    def Client(*args: Any, **kwargs: Any) -> AsyncFacade:
        # Built on a helper thread: the blocking client refuses a thread running a loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return AsyncFacade(pool.submit(sync.Client, *args, **kwargs).result())

    def __getattr__(self, name: str) -> Any:
        return getattr(aetcd, name)


def share(module: ModuleType) -> Callable[[pytest.MonkeyPatch], None]:
    """An autouse fixture that makes *module*'s tests build clients with ``aetcd.sync``."""

    @pytest.fixture(autouse=True)
    def sync_aetcd(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(module, "aetcd", SyncAetcd())

    return sync_aetcd
