"""The Auth facade (placeholder: being written)."""

from __future__ import annotations

from ._channel import Transport


class AuthAPI:
    """Auth operations of :class:`aetcd.Client` (etcd's Auth service)."""

    _t: Transport
