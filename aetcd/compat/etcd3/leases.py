"""Leases, as python-etcd3's ``etcd3.leases`` has them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aetcd

if TYPE_CHECKING:
    from .client import Etcd3Client

__all__ = ["Lease"]


class Lease:
    """A granted lease: ``refresh()``, ``revoke()``, ``remaining_ttl``, ``keys``."""

    def __init__(self, lease_id: int, ttl: int, etcd_client: Etcd3Client | None = None) -> None:
        self.id = lease_id
        self.ttl = ttl
        self.etcd_client = etcd_client

    def _info(self) -> aetcd.LeaseInfo:
        assert self.etcd_client is not None
        return self.etcd_client.get_lease_info(self.id)

    def revoke(self) -> None:
        """Revoke the lease (its keys are deleted)."""
        assert self.etcd_client is not None
        self.etcd_client.revoke_lease(self.id)

    def refresh(self) -> list[Any]:
        """Renew the lease once; returns a one-item list, as python-etcd3 did."""
        assert self.etcd_client is not None
        return self.etcd_client.refresh_lease(self.id)

    @property
    def remaining_ttl(self) -> int:
        """Seconds left, as the server says."""
        return self._info().ttl

    @property
    def granted_ttl(self) -> int:
        """The TTL the lease was granted with."""
        return self._info().granted_ttl

    @property
    def keys(self) -> list[bytes]:
        """The keys attached to the lease."""
        assert self.etcd_client is not None
        return self.etcd_client.get_lease_info(self.id, keys=True).keys


class _Refreshed:
    """What python-etcd3's ``refresh_lease`` yielded: a response with ``ID`` and ``TTL``."""

    def __init__(self, lease_id: int, ttl: int) -> None:
        self.ID = lease_id
        self.TTL = ttl
