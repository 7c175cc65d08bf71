"""The Cluster facade (placeholder: being written)."""

from __future__ import annotations

from ._channel import Transport


class ClusterAPI:
    """Cluster operations of :class:`aetcd.Client` (etcd's Cluster service)."""

    _t: Transport
