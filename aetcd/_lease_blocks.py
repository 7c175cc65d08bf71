"""The ``async with`` blocks of ``client.lease()`` and ``client.keepalive()``.

Each block holds a :class:`aetcd.Lease` for its duration: it asks the
:class:`aetcd.lease.LeaseAPI` for the handle on entry and hands it back on
exit (``client.lease()`` also revokes, even when the block is cancelled).
Handles and the keep-alive stream stay in :mod:`aetcd.lease` and
:mod:`aetcd._lessor`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING

from ._channel import State
from .errors import EtcdError, LeaseLostError, LeaseNotFoundError
from .ops import LeaseLike, _lease_id

if TYPE_CHECKING:
    from .lease import Lease, LeaseAPI

_log = logging.getLogger("aetcd")


class _LeaseContext:
    """``async with client.lease(ttl) as lease``: grant, keep alive, revoke on exit."""

    __slots__ = ("_api", "_id", "_lease", "_ttl")

    def __init__(self, api: LeaseAPI, ttl: int, id: int) -> None:
        self._api = api
        self._ttl = ttl
        self._id = id
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        if self._lease is not None:
            raise RuntimeError("this client.lease() context is already entered")
        lease = await self._api.grant(self._ttl, id=self._id)
        # Just granted with its full TTL: the first keep-alive is due on the
        # TTL/3 grid, not at once (one stream message less per short-lived
        # session, and no keep-alive racing its own grant: etcd#13932).
        lease._keep(self._api._keeper(), renewed_at=lease._deadline - lease._current_ttl)
        lease._holders = 1
        self._lease = lease
        return lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        error = await _shielded_release(self._api, lease)
        if error is None:
            return
        if exc_type is None:
            raise error
        _log.warning("could not revoke lease %#x on exit (%s); it expires later", lease.id, error)


class _KeepAliveContext:
    """``async with client.keepalive(lease) as lease``: keep an existing lease alive, no revoke."""

    __slots__ = ("_api", "_given", "_lease")

    def __init__(self, api: LeaseAPI, lease: LeaseLike) -> None:
        self._api = api
        self._given = lease
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        if self._lease is not None:
            raise RuntimeError("this client.keepalive() context is already entered")
        api = self._api
        given = self._given
        lid = _lease_id(given)
        lease = self._kept(lid)
        if lease is None:
            sent = time.monotonic()
            ttl = await api.keepalive_once(given)  # LeaseNotFoundError if it is gone
            lease = self._kept(lid)  # another block may have added it meanwhile
            if lease is None:
                lease = api._adopt(given, lid, ttl, sent)
        lease._holders += 1
        self._lease = lease
        return lease

    def _kept(self, lid: int) -> Lease | None:
        keeper = self._api._keepalive
        kept = None if keeper is None else keeper.leases.get(lid)
        return kept.handle if kept is not None and kept.handle.alive else None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        lease._holders -= 1
        if lease._holders <= 0:
            lease._stop_keeping()


async def _shielded_release(api: LeaseAPI, lease: Lease) -> EtcdError | None:
    """Stop keeping *lease* alive and revoke it, even if the calling task is cancelled.

    The revoke runs in its own task, bounded by min(TTL, client timeout); a
    cancellation of the caller is held back until it finishes, then re-raised.
    Returns the revoke error (``None`` on success, or when the lease was gone).
    """
    lease._stop_keeping()
    if lease._gone or api._t.state is State.CLOSED:
        # Nothing to revoke, or no way to (close() marked it lost; it expires by itself).
        lease._mark_lost(LeaseLostError(f"lease {lease.id:#x} was released"))
        return None
    was_alive = lease.alive
    limit = float(lease.ttl)
    if api._t.config.timeout is not None:
        limit = min(limit, api._t.config.timeout)
    task = asyncio.create_task(_revoke_for_release(api, lease, limit))
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            error = await asyncio.shield(task)
            break
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    if error is not None and not was_alive:
        # Already lost (most likely expired): a failed revoke changes nothing.
        _log.info("lease %#x: revoke on release failed: %s", lease.id, error)
        return None
    return error


async def _revoke_for_release(api: LeaseAPI, lease: Lease, timeout: float) -> EtcdError | None:
    try:
        await api.revoke(lease, timeout=timeout)
    except LeaseNotFoundError:
        lease._mark_lost(LeaseLostError(f"lease {lease.id:#x} was already gone when released"))
    except EtcdError as exc:
        lost = LeaseLostError(f"lease {lease.id:#x} was released but could not be revoked: {exc}")
        lost.__cause__ = exc
        lease._mark_lost(lost)
        return exc
    return None
