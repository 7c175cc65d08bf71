"""The one retry pause policy: capped exponential backoff with optional jitter.

Every loop that waits before trying again (the transport's retry rounds, lease
keep-alive retries, the watch stream's reconnects, the recipes' background
retries) draws its pauses from a :class:`Backoff`, each with its own constants.
"""

from __future__ import annotations

import asyncio
import random

__all__ = ["Backoff"]


class Backoff:
    """Pauses of *first*, then times *factor* per pause up to *cap* (default:
    *first*, a constant pause), each drawn within +-*jitter* (a fraction) so that
    clients retrying together spread out; :meth:`reset` after a success."""

    __slots__ = ("_current", "cap", "factor", "first", "jitter")

    def __init__(
        self, first: float, cap: float | None = None, *, factor: float = 2.0, jitter: float = 0.0
    ) -> None:
        if not 0 < first <= (first if cap is None else cap):
            raise ValueError(f"need 0 < first <= cap, got first={first}, cap={cap}")
        if factor < 1 or not 0 <= jitter < 1:
            raise ValueError(f"need factor >= 1 and 0 <= jitter < 1, got {factor}, {jitter}")
        self.first = first
        self.cap = first if cap is None else cap
        self.factor = factor
        self.jitter = jitter
        self._current = first

    def __repr__(self) -> str:
        return (
            f"Backoff(first={self.first}, cap={self.cap}, factor={self.factor}, "
            f"jitter={self.jitter}, next={self._current})"
        )

    def next(self) -> float:
        """The next pause in seconds; the one after is *factor* times longer (capped)."""
        pause = self._current
        self._current = min(pause * self.factor, self.cap)
        if self.jitter:
            pause *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return pause

    def reset(self) -> None:
        """Start again from *first* (the last attempt succeeded)."""
        self._current = self.first

    async def pause(self, deadline: float | None, error: BaseException) -> None:
        """Sleep the next pause, or raise *error* at once if the loop's *deadline*
        (``loop.time()`` based; ``None``: none) would pass before it ends."""
        pause = self.next()
        if deadline is not None and asyncio.get_running_loop().time() + pause >= deadline:
            raise error
        await asyncio.sleep(pause)
