"""A blocking client: :class:`aetcd.Client`'s API for threads instead of tasks.

``from aetcd import sync`` then ``with sync.Client("127.0.0.1:2379") as client:``.
The same methods, arguments, results and errors as the async client, and
every recipe as a ``with`` block (:mod:`aetcd.sync.recipes`). Each client runs
the async core on a private event-loop thread; this package only bridges to
it, so behaviour (retries, coalescing, watch resumption, lock ordering) is
the async client's. See ``docs/sync.md``.
"""

from .client import Client, Context, Iterate, Lease, SnapshotStream, Watch

__all__ = ["Client", "Context", "Iterate", "Lease", "SnapshotStream", "Watch"]
