"""Recipes built on etcd's primitives: sessions, locks, elections and more.

Each is also reachable from the client (``client.session()``, ``client.lock()``,
``client.election()``...). Lock and election use the key layout of etcd's Go
``concurrency`` package, so they interoperate with ``etcdctl lock`` /
``etcdctl elect`` and Go services.
"""

from .election import Election
from .lock import Lock
from .session import Session

__all__ = ["Election", "Lock", "Session"]
