"""The lifecycle of a client's transport, and the error of a call never sent.

A leaf: the transport and the member choice both use these.
"""

from __future__ import annotations

import enum

from .errors import DeadlineExceededError


def not_sent(write: bool, reason: str) -> DeadlineExceededError:
    """The error of a call whose deadline passed before it was sent.

    Definite, unlike :class:`aetcd.OutcomeUnknownTimeoutError`: nothing reached
    the server, so a write was not applied and may be retried as it is.
    """
    what = "nothing was sent: the write was not applied" if write else "nothing was sent"
    return DeadlineExceededError(f"{reason} ({what})")


class State(enum.Enum):
    """Lifecycle of a client: calls are only possible while OPENED."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"
