"""The Maintenance facade (placeholder: being written)."""

from __future__ import annotations

from ._channel import Transport


class MaintenanceAPI:
    """Maintenance operations of :class:`aetcd.Client` (etcd's Maintenance service)."""

    _t: Transport
