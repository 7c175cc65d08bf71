"""The recipes of Go's ``client/v3/experimental/recipes``: RWMutex, barriers and queues.

Same key layouts as the Go package, so Go and Python processes can share them:

* :class:`RWMutex` ``<name>``: ``<name>/read/<unix ns>`` and ``<name>/write/<unix ns>``,
  written with the holder's session lease.
* :class:`Barrier` ``<name>``: the single key ``<name>`` (no lease).
* :class:`DoubleBarrier` ``<name>``: ``<name>/waiters/<unix ns>`` (session lease) and
  ``<name>/ready`` (no lease).
* :class:`Queue` ``<name>``: ``<name>/<unix ns>`` items (no lease), served in
  revision order.
* :class:`PriorityQueue` ``<name>``: ``<name>/<priority %05d>/<sequence %016d>``
  items, served in key order, plus the bookkeeping key ``__<name>/<priority %05d>``.

Every wait is a watch (never polling), and the keys of a waiter that gives up
(timeout, cancellation, error) are removed again, shielded from cancellation.
"""

from __future__ import annotations

from ..errors import TooManyClientsError
from ._experimental import DEFAULT_CONTRIB_TTL
from .barrier import Barrier, DoubleBarrier
from .queue import PriorityQueue, Queue
from .rwmutex import RWLock, RWMutex

__all__ = [
    "DEFAULT_CONTRIB_TTL",
    "Barrier",
    "DoubleBarrier",
    "PriorityQueue",
    "Queue",
    "RWLock",
    "RWMutex",
    "TooManyClientsError",
]
