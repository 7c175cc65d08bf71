"""python-etcd3's lock (``etcd3.locks``), with its key layout and protocol."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Etcd3Client
    from .leases import Lease

__all__ = ["Lock"]


class Lock:
    """python-etcd3's lock, with its key layout and protocol, so python-etcd3
    processes and this module exclude each other on the same name.

    The holder's key is ``/locks/<name>`` with a random uuid as its value,
    created (only if absent: ``create_revision == 0``) with a lease of *ttl*
    seconds. Unlike python-etcd3, a waiter waits for the key's deletion with a
    watch that starts at the revision it saw, so no release is missed, and a
    failed attempt revokes its lease instead of leaving it to expire.
    """

    lock_prefix = "/locks/"

    def __init__(self, name: str, ttl: int = 60, etcd_client: Etcd3Client | None = None) -> None:
        self.name = name
        self.ttl = ttl
        if etcd_client is not None:
            self.etcd_client = etcd_client
        self.key = self.lock_prefix + self.name
        self.lease: Lease | None = None
        self.uuid = uuid.uuid1().bytes

    def acquire(self, timeout: float | None = 10) -> bool:
        """Take the lock within *timeout* seconds (``None``: wait for ever).

        Returns True once held, False if the time ran out.
        """
        client = self.etcd_client
        deadline = None if timeout is None else time.monotonic() + timeout
        tx = client.transactions
        while True:
            lease = client.lease(self.ttl)
            ok, responses = client.transaction(
                compare=[tx.create(self.key) == 0],
                success=[tx.put(self.key, self.uuid, lease=lease)],
                failure=[tx.get(self.key)],
            )
            if ok:
                self.lease = lease
                return True
            lease.revoke()
            holder = responses[0]
            if not holder:
                continue  # released between the compare and the read
            revision = holder[0][1].mod_revision
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if not client._wait_delete(self.key, revision + 1, remaining):
                return False

    def release(self) -> bool:
        """Release the lock if this object holds it; True if it did."""
        tx = self.etcd_client.transactions
        ok, _ = self.etcd_client.transaction(
            compare=[tx.value(self.key) == self.uuid],
            success=[tx.delete(self.key)],
            failure=[],
        )
        return ok

    def refresh(self) -> list[Any]:
        """Renew the lock's lease."""
        if self.lease is None:
            raise ValueError("No lease associated with this lock - have you acquired the lock yet?")
        return self.lease.refresh()

    def is_acquired(self) -> bool:
        """Whether this object holds the lock now (asks the server)."""
        value, _ = self.etcd_client.get(self.key)
        return value is not None and value == self.uuid

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
