"""python-etcd3 0.12's public API on top of :mod:`aetcd.sync`.

``from aetcd.compat import etcd3`` replaces ``import etcd3``: ``etcd3.client(...)``,
:class:`Etcd3Client` with python-etcd3's methods and return shapes,
``etcd3.exceptions``, ``etcd3.events``, ``etcd3.utils``, ``Lease``, ``Lock``
(python-etcd3's own key layout, so both libraries exclude each other) and
``Member``. Differences where python-etcd3 is buggy are in ``docs/migration.md``.
"""

from . import events, exceptions, leases, locks, members, transactions, utils
from .client import Alarm, Etcd3Client, KVMetadata, Status, client
from .exceptions import Etcd3Exception
from .leases import Lease
from .locks import Lock
from .members import Member
from .multi import Endpoint, MultiEndpointEtcd3Client
from .transactions import Transactions

__version__ = "0.12.0"

__all__ = [
    "Alarm",
    "Endpoint",
    "Etcd3Client",
    "Etcd3Exception",
    "KVMetadata",
    "Lease",
    "Lock",
    "Member",
    "MultiEndpointEtcd3Client",
    "Status",
    "Transactions",
    "client",
    "events",
    "exceptions",
    "leases",
    "locks",
    "members",
    "transactions",
    "utils",
]
