"""The Lease facade (placeholder: being written)."""

from __future__ import annotations

from ._channel import Transport


class LeaseAPI:
    """Lease operations of :class:`aetcd.Client` (etcd's Lease service)."""

    _t: Transport
