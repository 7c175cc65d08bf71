"""python-etcd3's exception classes, under the same names.

Errors python-etcd3 translated (gRPC ``INTERNAL``, ``UNAVAILABLE``,
``DEADLINE_EXCEEDED``, ``FAILED_PRECONDITION``) raise these; every other error
raises :class:`RpcError`, a ``grpc.RpcError`` as python-etcd3 let through. The
underlying :class:`aetcd.EtcdError` is the ``__cause__`` of either.
"""

from __future__ import annotations

import grpc


class Etcd3Exception(Exception):
    """Base of python-etcd3's own errors."""


class WatchTimedOut(Etcd3Exception):
    """``watch_once`` saw no event within its timeout."""


class InternalServerError(Etcd3Exception):
    """gRPC ``INTERNAL``."""


class ConnectionFailedError(Etcd3Exception):
    """No endpoint could be reached (gRPC ``UNAVAILABLE``)."""

    def __str__(self) -> str:
        return "etcd connection failed"


class ConnectionTimeoutError(Etcd3Exception):
    """The call's deadline passed (gRPC ``DEADLINE_EXCEEDED``)."""

    def __str__(self) -> str:
        return "etcd connection timeout"


class PreconditionFailedError(Etcd3Exception):
    """gRPC ``FAILED_PRECONDITION``."""


class RevisionCompactedError(Etcd3Exception):
    """A watch asked for history that was compacted."""

    def __init__(self, compacted_revision: int) -> None:
        self.compacted_revision = compacted_revision
        super().__init__()


class RpcError(grpc.RpcError):
    """An etcd error python-etcd3 did not translate: catchable as ``grpc.RpcError``."""

    def __init__(self, status: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._status = status
        self._details = details

    def code(self) -> grpc.StatusCode:
        """The gRPC status code."""
        return self._status

    def details(self) -> str:
        """The server's message."""
        return self._details


class NoServerAvailableError(Etcd3Exception):
    """python-etcd3 main: every endpoint failed recently (kept for ``except`` clauses;
    aetcd retries endpoints itself and raises :class:`ConnectionFailedError`)."""
