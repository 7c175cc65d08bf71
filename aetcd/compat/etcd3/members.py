"""Cluster members, as python-etcd3's ``etcd3.members`` has them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Alarm, Etcd3Client

__all__ = ["Member"]


class Member:
    """A cluster member, with python-etcd3's ``remove()`` / ``update()`` helpers."""

    def __init__(
        self,
        id: int,
        name: str,
        peer_urls: list[str],
        client_urls: list[str],
        etcd_client: Etcd3Client | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.peer_urls = peer_urls
        self.client_urls = client_urls
        self._etcd_client = etcd_client

    def __str__(self) -> str:
        return f"Member {self.id}: peer urls: {self.peer_urls}, client urls: {self.client_urls}"

    def remove(self) -> None:
        """Remove this member from the cluster."""
        assert self._etcd_client is not None
        self._etcd_client.remove_member(self.id)

    def update(self, peer_urls: list[str]) -> None:
        """Change this member's peer URLs."""
        assert self._etcd_client is not None
        self._etcd_client.update_member(self.id, peer_urls)

    @property
    def active_alarms(self) -> Iterator[Alarm]:
        """The alarms raised on this member."""
        assert self._etcd_client is not None
        return self._etcd_client.list_alarms(member_id=self.id)
