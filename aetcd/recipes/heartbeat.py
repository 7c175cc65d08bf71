"""Heartbeat: a key that exists exactly while this process is alive.

The "heart-ping" pattern: the key is written with a lease that is kept alive in
the background. When the process dies the lease expires and etcd deletes the
key within the TTL; when the block is left the lease is revoked and the key
disappears at once. If the lease is lost meanwhile (the server or the network
was away for longer than the TTL, or someone revoked it), a new lease is
granted and the key written again as soon as the server answers.
:class:`aetcd.recipes.Registration` is a heartbeat whose value describes a
service endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from .._backoff import Backoff
from .._keys import to_bytes, to_int, to_key
from ..errors import ClientClosedError, EtcdError, LeaseLostError
from ..lease import MAX_LEASE_TTL, Lease
from ._util import first_of, shielded

if TYPE_CHECKING:
    from ._client import RecipeClient

__all__ = ["DEFAULT_HEARTBEAT_TTL", "Heartbeat", "is_alive"]

log = logging.getLogger("aetcd")

#: Default TTL of a heartbeat's lease, in seconds.
DEFAULT_HEARTBEAT_TTL: Final = 5

_RETRY_MIN: Final = 0.1  # first pause between re-registration attempts, seconds
_RETRY_MAX: Final = 2.0  # cap: each attempt itself waits up to the client timeout


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


async def is_alive(client: RecipeClient, key: str | bytes, *, timeout: float | None = None) -> bool:
    """Whether *key* currently exists (a heartbeat or registration is alive)."""
    res = await client.get(to_key(key), count_only=True, timeout=timeout)
    return res.count > 0


class Heartbeat:
    """Keep *key* = *value* in etcd, attached to a lease kept alive, while the block runs.

    ``async with client.heartbeat("heart-ping", "live", ttl=5) as hb:`` grants a
    lease, writes the key with it and returns once the key is written (errors
    of that first write are raised from ``async with``). Then:

    * ``hb.alive`` is True while the key is believed present; ``await hb.lost()``
      returns when the lease is lost and ``await hb.restored()`` when the key
      has been written again; ``hb.registrations`` counts the writes (1 after
      entry) and ``hb.lost_reason`` says why the last lease was lost.
    * A lost lease is replaced by a background task owned by the heartbeat: it
      grants a new lease and writes the key again, retrying with capped backoff
      for as long as the block runs, logging every failed attempt at warning
      level on the ``aetcd`` logger. It gives up only if the client is closed.
    * Leaving the block (also by cancellation) stops that task and revokes the
      lease, so the key disappears at once; the revoke is shielded from
      cancellation and bounded by min(TTL, client timeout). If the process
      dies instead, etcd deletes the key within about TTL seconds.

    Only loss of the lease is noticed: if another writer deletes or overwrites
    the key while the lease lives, it is not written again. Use one heartbeat
    per key.
    """

    def __init__(
        self,
        client: RecipeClient,
        key: str | bytes,
        value: str | bytes = b"",
        *,
        ttl: int = DEFAULT_HEARTBEAT_TTL,
    ) -> None:
        self.client = client
        self.key = to_key(key, "key")
        self.value = to_bytes(value, "value")
        self.ttl = to_int(ttl, "ttl", minimum=1, maximum=MAX_LEASE_TTL)
        #: how many times the key was written (1 after entry, +1 per re-registration)
        self.registrations = 0
        self._context: contextlib.AbstractAsyncContextManager[Lease] | None = None
        self._lease: Lease | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()  # set while the key is believed present
        self._down = asyncio.Event()  # set while it is not
        self._down.set()
        self._stopped = asyncio.Event()  # the block was left or the task gave up
        self._lost_reason: LeaseLostError | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        if self._lease is None:
            state = "not open"
        else:
            state = f"lease={self._lease.id:#x} {'alive' if self.alive else 'lost'}"
        return f"<aetcd.recipes.{type(self).__name__} {self.key!r} {state}>"

    # -- state -----------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the key is believed present (written, and its lease not lost)."""
        lease = self._lease
        return self._up.is_set() and lease is not None and lease.alive

    @property
    def lease_id(self) -> int:
        """The id of the lease the key is (or was last) attached to."""
        if self._lease is None:
            raise RuntimeError(f"{type(self).__name__} is not open: use `async with`")
        return self._lease.id

    @property
    def lost_reason(self) -> LeaseLostError | None:
        """Why the most recent lease was lost (``None`` if none was lost yet)."""
        return self._lost_reason

    async def lost(self) -> None:
        """Return once the key is no longer believed present (at once if it is not).

        Cancelling the waiting task only ends the wait.
        """
        if self.alive:
            await self._down.wait()

    async def restored(self) -> None:
        """Return once the key is written again after a loss (at once if it is alive).

        Raises ``RuntimeError`` if the block is left, or the background task
        gives up (its error is the ``__cause__``), before that.
        """
        while not self.alive:
            if self._stopped.is_set():
                raise RuntimeError(
                    f"{type(self).__name__} {self.key!r} is closed or gave up"
                ) from self._failure
            await first_of(self._up.wait(), _wait(self._stopped))
            if self._up.is_set() and not self.alive:
                await asyncio.sleep(0)  # the new lease is already lost: let the task see it

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._context is not None:
            raise RuntimeError(f"this {type(self).__name__} is already open")
        self._stopped.clear()
        self._failure = None
        self._lost_reason = None
        self.registrations = 0
        self._context, self._lease = await self._register()
        self.registrations = 1
        self._set_up()
        self._task = asyncio.create_task(self._keep(), name=f"aetcd heartbeat {self.key!r}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failure = await shielded(self._close(exc_type, exc, tb), None)
        if failure is not None and exc_type is None:
            raise failure

    async def _close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> BaseException | None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._stopped.set()
        self._set_down()
        context, self._context = self._context, None
        if context is not None:
            await context.__aexit__(exc_type, exc, tb)  # revoke: the key goes at once
        failure = self._failure
        # A closed client is the caller's doing and already logged; anything else is a bug.
        return None if isinstance(failure, ClientClosedError) else failure

    # -- machinery -------------------------------------------------------------------

    async def _register(self) -> tuple[contextlib.AbstractAsyncContextManager[Lease], Lease]:
        """Grant a lease kept alive and write the key with it (one attempt)."""
        context = self.client.lease(self.ttl)
        lease = await context.__aenter__()
        try:
            await self.client.put(self.key, self.value, lease=lease)
        except BaseException as exc:
            await context.__aexit__(type(exc), exc, exc.__traceback__)  # revoke, shielded
            raise
        return context, lease

    async def _keep(self) -> None:
        """Wait for the lease to be lost, then register again; until cancelled."""
        try:
            while True:
                lease = self._lease
                assert lease is not None
                await lease.lost()
                self._lost_reason = lease.lost_reason
                self._set_down()
                log.warning(
                    "heartbeat %r: lease %#x lost (%s); registering again",
                    self.key,
                    lease.id,
                    lease.lost_reason,
                )
                await self._reregister()
        except ClientClosedError as exc:
            log.warning("heartbeat %r: the client was closed; giving up", self.key)
            self._failure = exc
        except Exception as exc:
            log.exception("heartbeat %r: background task failed", self.key)
            self._failure = exc
        finally:
            self._stopped.set()

    async def _reregister(self) -> None:
        backoff = Backoff(_RETRY_MIN, _RETRY_MAX)
        attempt = 0
        while True:
            attempt += 1
            try:
                context, lease = await self._register()
            except ClientClosedError:
                raise
            except EtcdError as exc:
                pause = backoff.next()
                log.warning(
                    "heartbeat %r: registration attempt %d failed (%s); retrying in %.1f s",
                    self.key,
                    attempt,
                    exc,
                    pause,
                )
                await asyncio.sleep(pause)
                continue
            old, self._context, self._lease = self._context, context, lease
            self.registrations += 1
            self._set_up()
            log.info("heartbeat %r: registered again with lease %#x", self.key, lease.id)
            if old is not None:
                # The key now belongs to the new lease: revoking the old one (which
                # may still exist on the server, e.g. after a restart) cannot delete it.
                try:
                    await old.__aexit__(None, None, None)
                except EtcdError as exc:
                    log.info("heartbeat %r: could not revoke the old lease: %s", self.key, exc)
            return

    def _set_up(self) -> None:
        self._down.clear()
        self._up.set()

    def _set_down(self) -> None:
        self._up.clear()
        self._down.set()
