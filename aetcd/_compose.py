"""How a :class:`aetcd.Client` is put together: its transport, one object per
etcd service, and the exit stack that ``close()`` unwinds.

Everything with background work registers its shutdown on the stack when it
is built, so the stack undoes the build in reverse: the services first, the
transport last. The client keeps the parts as attributes (its delegators read
``self._kv``, not a field of a field) and owns them from then on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ._channel import Transport
from ._coalesce import Coalescer
from .auth import AuthAPI
from .cluster import ClusterAPI
from .config import ClientConfig
from .kv import KV
from .lease import LeaseAPI
from .maintenance import MaintenanceAPI
from .watch import WatchAPI

_F = TypeVar("_F", bound=Callable[..., Any])


class Parts(NamedTuple):
    """What a client is made of."""

    transport: Transport
    stack: contextlib.AsyncExitStack
    kv: KV
    leases: LeaseAPI
    watches: WatchAPI
    cluster: ClusterAPI
    maintenance: MaintenanceAPI
    auth: AuthAPI


def compose(settings: ClientConfig, coalesce_reads: bool, coalesce_writes: bool) -> Parts:
    """Build a client's parts for *settings*; nothing connects until first use."""
    if type(coalesce_reads) is not bool or type(coalesce_writes) is not bool:
        raise TypeError("coalesce_reads and coalesce_writes must be bool")
    t = Transport(settings)
    stack = contextlib.AsyncExitStack()
    stack.push_async_callback(t.close)
    reads = Coalescer(t, write=False) if coalesce_reads else None
    writes = Coalescer(t, write=True) if coalesce_writes else None
    for batcher in (reads, writes):
        if batcher is not None:
            stack.push_async_callback(batcher.close)
    leases = LeaseAPI(t)
    stack.push_async_callback(leases.aclose)
    watches = WatchAPI(t)
    stack.push_async_callback(watches.aclose)
    kv = KV(t, reads, writes)
    return Parts(t, stack, kv, leases, watches, ClusterAPI(t), MaintenanceAPI(t), AuthAPI(t))


def doc(source: Callable[..., Any]) -> Callable[[_F], _F]:
    """Give a delegator the docstring of the service method it calls (one source)."""

    def apply(delegator: _F) -> _F:
        delegator.__doc__ = source.__doc__
        return delegator

    return apply
