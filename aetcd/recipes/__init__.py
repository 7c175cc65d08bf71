"""Recipes built on etcd's primitives: sessions, locks, elections, heartbeats,
service discovery, a configuration mirror, STM and Go's contrib recipes.

Most are also reachable from the client (``client.session()``, ``client.lock()``,
``client.election()``, ``client.heartbeat()``, ``client.register()``,
``client.discover()``, ``client.config()``). Lock and election use the key
layout of etcd's Go ``concurrency`` package, so they interoperate with
``etcdctl lock`` / ``etcdctl elect`` and Go services; registration and
discovery use Go's ``naming/endpoints`` layout.
"""

from ..errors import STMConflictError, TooManyClientsError
from .config import ConfigChange, ConfigChanges, ConfigMirror, SubscriberOverflowError
from .contrib import Barrier, DoubleBarrier, PriorityQueue, Queue, RWLock, RWMutex
from .discovery import (
    Discovery,
    DiscoveryUpdates,
    Instance,
    Registration,
    decode_endpoint,
    encode_endpoint,
)
from .election import Election
from .heartbeat import Heartbeat, is_alive
from .lock import Lock
from .session import Session
from .stm import STM, Isolation, stm

__all__ = [
    "STM",
    "Barrier",
    "ConfigChange",
    "ConfigChanges",
    "ConfigMirror",
    "Discovery",
    "DiscoveryUpdates",
    "DoubleBarrier",
    "Election",
    "Heartbeat",
    "Instance",
    "Isolation",
    "Lock",
    "PriorityQueue",
    "Queue",
    "RWLock",
    "RWMutex",
    "Registration",
    "STMConflictError",
    "Session",
    "SubscriberOverflowError",
    "TooManyClientsError",
    "decode_endpoint",
    "encode_endpoint",
    "is_alive",
    "stm",
]
