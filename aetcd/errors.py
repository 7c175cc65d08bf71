"""Everything aetcd raises for server or network trouble, and the one place that
turns a gRPC failure into one of these.

The tree (``*`` marks classes that are also a builtin, so ``except ValueError``
or ``except TimeoutError`` keep working)::

    EtcdError
    ├── ClientClosedError*            RuntimeError: the client is closed or was forked
    ├── ConnectionFailedError         no connection to any endpoint
    ├── DeadlineExceededError*        TimeoutError: the call's deadline passed
    │   └── OutcomeUnknownTimeoutError   (also OutcomeUnknownError)
    ├── OutcomeUnknownError           a write failed in transit; it may have been applied
    ├── UnavailableError              the server could not serve the request now
    │   ├── NoLeaderError
    │   ├── LeaderChangedError
    │   ├── ServerTimeoutError
    │   └── NotSupportedForLearnerError
    ├── InvalidArgumentError*         ValueError: the request is malformed
    │   ├── EmptyKeyError  TooManyOpsError  DuplicateKeyError  RequestTooLargeError
    │   ├── KeyNotFoundError  ValueProvidedError  LeaseProvidedError
    │   └── LeaseTTLTooLargeError
    ├── RevisionError
    │   ├── CompactedError            .compact_revision
    │   └── FutureRevisionError
    ├── LeaseError
    │   ├── LeaseNotFoundError
    │   ├── LeaseExistsError
    │   └── LeaseLostError            a lease we kept alive is gone
    ├── NoSpaceError                  the NOSPACE alarm is raised
    ├── TooManyRequestsError
    ├── AuthError
    │   ├── AuthenticationError       bad credentials or token
    │   ├── PermissionDeniedError
    │   └── AuthAdminError            user/role administration failures
    ├── ClusterError                  membership and leadership administration
    ├── CorruptError                  the cluster reports data corruption
    ├── WatchCanceledError            the server cancelled a watch
    ├── ElectionNotLeaderError        proclaim/resign by a campaigner that is not leader
    ├── STMConflictError              an STM transaction kept conflicting
    ├── TooManyClientsError           a DoubleBarrier is full
    └── LockTimeoutError*             TimeoutError: a lock was not acquired in time

Every error carries the server's message (``.message``), the gRPC status code
(``.code``) and whether retrying the same call can help (``.retryable``). An
error that aetcd's own check raises before any I/O, where etcd has a message
for the same fault, carries etcd's exact message and the code etcd would have
sent, plus aetcd's account of what was wrong in ``.detail``; other local
errors have aetcd's own message and ``code`` ``None``.

Server errors are recognised by etcd's exact messages (etcd's ``rpctypes``), in
``_from_grpc`` only.
"""

from __future__ import annotations

from typing import Final, TypeVar

import grpc

__all__ = [
    "AuthAdminError",
    "AuthError",
    "AuthenticationError",
    "ClientClosedError",
    "ClusterError",
    "CompactedError",
    "ConnectionFailedError",
    "CorruptError",
    "DeadlineExceededError",
    "DuplicateKeyError",
    "ElectionNotLeaderError",
    "EmptyKeyError",
    "EtcdError",
    "FutureRevisionError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "LeaderChangedError",
    "LeaseError",
    "LeaseExistsError",
    "LeaseLostError",
    "LeaseNotFoundError",
    "LeaseProvidedError",
    "LeaseTTLTooLargeError",
    "LockTimeoutError",
    "NoLeaderError",
    "NoSpaceError",
    "NotSupportedForLearnerError",
    "OutcomeUnknownError",
    "OutcomeUnknownTimeoutError",
    "PermissionDeniedError",
    "RequestTooLargeError",
    "RevisionError",
    "STMConflictError",
    "ServerTimeoutError",
    "TooManyClientsError",
    "TooManyOpsError",
    "TooManyRequestsError",
    "UnavailableError",
    "ValueProvidedError",
    "WatchCanceledError",
    "from_message",
]


class EtcdError(Exception):
    """Base of every error aetcd raises for server or network trouble."""

    #: Whether repeating the same call may succeed. Instances may override it.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        retryable: bool | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        #: aetcd's own account of a fault it found before any I/O (``None`` otherwise).
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        if self.detail is not None:
            return f"{self.message} ({self.detail})"
        if self.code is None:
            return self.message
        return f"{self.message} (grpc {self.code.name})"

    def __repr__(self) -> str:
        code = None if self.code is None else self.code.name
        detail = "" if self.detail is None else f", detail={self.detail!r}"
        return f"{type(self).__name__}({self.message!r}, code={code}{detail})"


# -- the client itself --------------------------------------------------------


class ClientClosedError(EtcdError, RuntimeError):
    """Caller's fault: the client was used after ``close()``, or in a forked child.

    A gRPC channel cannot cross ``fork()``; create a new client in the child.
    """


# -- transport ----------------------------------------------------------------


class ConnectionFailedError(EtcdError):
    """Network's fault: no endpoint could be reached. Retrying later can help."""

    retryable = True


class DeadlineExceededError(EtcdError, TimeoutError):
    """Nobody's fault in particular: the call did not finish within its timeout.

    For reads this is safe to retry. For writes see :class:`OutcomeUnknownError`.
    """

    retryable = True


class OutcomeUnknownError(EtcdError):
    """Network's or cluster's fault: a write failed in transit.

    The server may or may not have applied it. aetcd never retries such a write
    on its own: re-read the state (or make the write conditional in a txn) and
    decide. ``__cause__`` holds the underlying failure.
    """

    retryable = False


class OutcomeUnknownTimeoutError(OutcomeUnknownError, DeadlineExceededError):
    """A write hit its deadline: it may or may not have been applied."""

    retryable = False


# -- server: unavailable ------------------------------------------------------


class UnavailableError(EtcdError):
    """Cluster's fault: the member cannot serve the request right now."""

    retryable = True


class NoLeaderError(UnavailableError):
    """Cluster's fault: the member has no leader (lost quorum or partitioned)."""


class LeaderChangedError(UnavailableError):
    """Cluster's fault: the leader changed while the request was in flight."""


class ServerTimeoutError(UnavailableError):
    """Cluster's fault: the server timed out applying the request."""


class NotSupportedForLearnerError(UnavailableError):
    """Caller's setup: a learner member cannot serve this request; use another endpoint."""


# -- server: bad request ------------------------------------------------------


class InvalidArgumentError(EtcdError, ValueError):
    """Caller's fault: the request is malformed. Retrying the same call cannot help.

    Most of these are raised locally, before any I/O: then ``message`` and
    ``code`` are what etcd would have answered (where etcd checks the same
    thing) and ``detail`` says what exactly was wrong.
    """


class EmptyKeyError(InvalidArgumentError):
    """Caller's fault: a key is empty. Use ``prefix=True`` on ``b""`` to mean every key."""


class TooManyOpsError(InvalidArgumentError):
    """Caller's fault: a txn has more operations than the server's ``--max-txn-ops``."""


class DuplicateKeyError(InvalidArgumentError):
    """Caller's fault: a txn branch writes the same key twice."""


class RequestTooLargeError(InvalidArgumentError):
    """Caller's fault: the request exceeds the server's ``--max-request-bytes``."""


class KeyNotFoundError(InvalidArgumentError):
    """Caller's fault: ``ignore_value``/``ignore_lease`` on a key that does not exist."""


class ValueProvidedError(InvalidArgumentError):
    """Caller's fault: a value was given together with ``ignore_value=True``."""


class LeaseProvidedError(InvalidArgumentError):
    """Caller's fault: a lease was given together with ``ignore_lease=True``."""


class LeaseTTLTooLargeError(InvalidArgumentError):
    """Caller's fault: the lease TTL is beyond the server's maximum."""


# -- server: revisions --------------------------------------------------------


class RevisionError(EtcdError):
    """Caller's fault: the revision asked for is not available."""


class CompactedError(RevisionError):
    """The revision asked for was compacted away.

    ``compact_revision`` is the oldest revision still available when the server
    told us (watches always do), or ``None`` when it did not (ranges).
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        retryable: bool | None = None,
        detail: str | None = None,
        compact_revision: int | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable, detail=detail)
        self.compact_revision = compact_revision


class FutureRevisionError(RevisionError):
    """Caller's fault: the revision asked for is newer than the store's."""


# -- server: leases -----------------------------------------------------------


class LeaseError(EtcdError):
    """Base of lease failures."""


class LeaseNotFoundError(LeaseError):
    """The lease does not exist: it expired, was revoked, or never existed."""


class LeaseExistsError(LeaseError):
    """Caller's fault: a lease with the requested id already exists."""


class LeaseLostError(LeaseError):
    """A lease this client kept alive is gone (expired, revoked, or unreachable past its TTL)."""


# -- server: resources --------------------------------------------------------


class NoSpaceError(EtcdError):
    """Operator's fault: the NOSPACE alarm is raised; writes fail until it is disarmed."""


class TooManyRequestsError(EtcdError):
    """Cluster's load: the server is shedding requests. Retrying later can help."""

    retryable = True


# -- server: auth -------------------------------------------------------------


class AuthError(EtcdError):
    """Base of authentication and authorisation failures."""


class AuthenticationError(AuthError):
    """Caller's credentials: wrong user/password, or an invalid or expired token."""


class PermissionDeniedError(AuthError):
    """Caller's permissions: the user's roles do not allow this request."""


class AuthAdminError(AuthError):
    """Caller's fault: a user/role administration request cannot be applied."""


# -- server: cluster ----------------------------------------------------------


class ClusterError(EtcdError):
    """Caller's fault or cluster state: a membership or leadership change was refused."""


class CorruptError(EtcdError):
    """Cluster's fault: a member detected data corruption. Operator action needed."""


# -- streams and recipes ------------------------------------------------------


class WatchCanceledError(EtcdError):
    """The server cancelled a watch (for example: permission denied)."""


class ElectionNotLeaderError(EtcdError):
    """This campaigner is not (or no longer) the leader: its key is gone or replaced."""


class STMConflictError(EtcdError):
    """:func:`stm` gave up: every attempt conflicted with other writers.

    ``attempts`` is how many times the function ran. Nothing was written.
    Retrying later may succeed.
    """

    retryable = True

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class TooManyClientsError(EtcdError):
    """A :class:`DoubleBarrier` already has its count of participants (Go ``ErrTooManyClients``)."""

    retryable = True


class LockTimeoutError(EtcdError, TimeoutError):
    """The lock was not acquired within the timeout; our waiter key was removed."""

    retryable = True


# -- the translation point ----------------------------------------------------

_S = grpc.StatusCode
_E = TypeVar("_E", bound=EtcdError)

# etcd's exact messages (api/v3rpc/rpctypes/error.go) -> our class.
_BY_MESSAGE: Final[dict[str, type[EtcdError]]] = {
    "etcdserver: key is not provided": EmptyKeyError,
    "etcdserver: key not found": KeyNotFoundError,
    "etcdserver: value is provided": ValueProvidedError,
    "etcdserver: lease is provided": LeaseProvidedError,
    "etcdserver: ttl is 0": InvalidArgumentError,
    "etcdserver: too many operations in txn request": TooManyOpsError,
    "etcdserver: duplicate key given in txn request": DuplicateKeyError,
    "etcdserver: invalid sort option": InvalidArgumentError,
    "etcdserver: invalid client api version": InvalidArgumentError,
    "etcdserver: mvcc: required revision has been compacted": CompactedError,
    "etcdserver: mvcc: required revision is a future revision": FutureRevisionError,
    "etcdserver: mvcc: database space exceeded": NoSpaceError,
    "etcdserver: requested lease not found": LeaseNotFoundError,
    "etcdserver: lease already exists": LeaseExistsError,
    "etcdserver: too large lease TTL": LeaseTTLTooLargeError,
    "etcdserver: member ID already exist": ClusterError,
    "etcdserver: Peer URLs already exists": ClusterError,
    "etcdserver: re-configuration failed due to not enough started members": ClusterError,
    "etcdserver: given member URLs are invalid": InvalidArgumentError,
    "etcdserver: member not found": ClusterError,
    "etcdserver: can only promote a learner member": ClusterError,
    "etcdserver: can only promote a learner member which is in sync with leader": ClusterError,
    "etcdserver: too many learner members in cluster": ClusterError,
    "etcdserver: request is too large": RequestTooLargeError,
    "etcdserver: too many requests": TooManyRequestsError,
    "etcdserver: root user does not exist": AuthAdminError,
    "etcdserver: root user does not have root role": AuthAdminError,
    "etcdserver: user name already exists": AuthAdminError,
    "etcdserver: user name is empty": AuthenticationError,
    "etcdserver: user name not found": AuthAdminError,
    "etcdserver: role name already exists": AuthAdminError,
    "etcdserver: role name not found": AuthAdminError,
    "etcdserver: role name is empty": AuthAdminError,
    "etcdserver: authentication failed, invalid user ID or password": AuthenticationError,
    "etcdserver: permission not given": AuthAdminError,
    "etcdserver: permission denied": PermissionDeniedError,
    "etcdserver: role is not granted to the user": AuthAdminError,
    "etcdserver: permission is not granted to the role": AuthAdminError,
    "etcdserver: authentication is not enabled": AuthAdminError,
    "etcdserver: invalid auth token": AuthenticationError,
    "etcdserver: invalid auth management": AuthAdminError,
    "etcdserver: revision of auth store is old": AuthenticationError,
    "etcdserver: no leader": NoLeaderError,
    "etcdserver: not leader": ClusterError,
    "etcdserver: leader changed": LeaderChangedError,
    "etcdserver: not capable": UnavailableError,
    "etcdserver: server stopped": UnavailableError,
    "etcdserver: request timed out": ServerTimeoutError,
    "etcdserver: request timed out, possibly due to previous leader failure": ServerTimeoutError,
    "etcdserver: request timed out, possibly due to connection lost": ServerTimeoutError,
    "etcdserver: request timed out, waiting for the applied index took too long": (
        ServerTimeoutError
    ),
    "etcdserver: request timed out, leader transfer took too long": ServerTimeoutError,
    "etcdserver: unhealthy cluster": UnavailableError,
    "etcdserver: corrupt cluster": CorruptError,
    "etcdserver: rpc not supported for learner": NotSupportedForLearnerError,
    "etcdserver: bad leader transferee": ClusterError,
    "etcdserver: cluster version not found during downgrade": ClusterError,
    "etcdserver: wrong downgrade target version format": InvalidArgumentError,
    "etcdserver: invalid downgrade target version": InvalidArgumentError,
    "etcdserver: cluster has a downgrade job in progress": ClusterError,
    "etcdserver: no inflight downgrade job": ClusterError,
    "etcdserver: watch canceled": WatchCanceledError,
}

# The gRPC codes etcd sends (rpctypes) with the messages of faults aetcd also
# checks before any I/O; tests/integration/test_local_errors.py compares each
# with a real server's answer.
_LOCAL_CODES: Final[dict[str, grpc.StatusCode]] = {
    "etcdserver: key is not provided": _S.INVALID_ARGUMENT,
    "etcdserver: value is provided": _S.INVALID_ARGUMENT,
    "etcdserver: lease is provided": _S.INVALID_ARGUMENT,
    "etcdserver: too many operations in txn request": _S.INVALID_ARGUMENT,
    "etcdserver: request is too large": _S.INVALID_ARGUMENT,
    "etcdserver: too large lease TTL": _S.OUT_OF_RANGE,
    "etcdserver: user name is empty": _S.INVALID_ARGUMENT,
    "etcdserver: role name is empty": _S.INVALID_ARGUMENT,
    "etcdserver: wrong downgrade target version format": _S.INVALID_ARGUMENT,
}


def _rejected(cls: type[_E], message: str, detail: str) -> _E:
    """An error found by aetcd's own check before any I/O, worded as etcd words it.

    *message* is etcd's exact text for the fault, so logs and ``except``
    clauses that match etcd's messages (or ``code``, the gRPC code etcd would
    have sent) see the same error whether the client or the server caught it;
    *detail* keeps what the local check knows (sizes, limits, the argument).
    """
    return cls(message, code=_LOCAL_CODES[message], detail=detail)


# Messages of errors that etcd returns before proposing a request to raft: a
# write that failed with one of these was provably not applied.
_NOT_APPLIED: Final = frozenset(
    {
        "etcdserver: no leader",
        "etcdserver: not capable",
        "etcdserver: too many requests",
        "etcdserver: rpc not supported for learner",
        "etcdserver: unhealthy cluster",
    }
)

# Retryability of server-recognised errors where the class default is wrong.
_RETRYABLE: Final = frozenset(
    {
        "etcdserver: invalid auth token",
        "etcdserver: revision of auth store is old",
    }
)

# Codes of failures that did not come from etcd's own checks.
_BY_CODE: Final[dict[grpc.StatusCode, type[EtcdError]]] = {
    _S.INVALID_ARGUMENT: InvalidArgumentError,
    _S.OUT_OF_RANGE: InvalidArgumentError,
    _S.NOT_FOUND: EtcdError,
    _S.PERMISSION_DENIED: PermissionDeniedError,
    _S.UNAUTHENTICATED: AuthenticationError,
    _S.RESOURCE_EXHAUSTED: TooManyRequestsError,
    _S.DATA_LOSS: CorruptError,
    _S.UNAVAILABLE: ConnectionFailedError,
    _S.DEADLINE_EXCEEDED: DeadlineExceededError,
}

_GO_DEADLINE: Final = "context deadline exceeded"

_TRANSPORT_CODES: Final = frozenset(
    {_S.UNAVAILABLE, _S.DEADLINE_EXCEEDED, _S.CANCELLED, _S.INTERNAL, _S.UNKNOWN}
)


def _from_grpc(exc: grpc.RpcError, *, write: bool = False) -> EtcdError:
    """Translate a failed gRPC call into an :class:`EtcdError`.

    The one place where gRPC failures become aetcd errors. ``write=True`` marks
    a call that changes state (Put, DeleteRange, Txn with writes, Compact,
    membership or auth changes): a transport failure of such a call, or a
    server timeout, is reported as :class:`OutcomeUnknownError`, because the
    server may have applied it.
    """
    code: grpc.StatusCode | None = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else None
    message = details or (code.name if code is not None else str(exc))
    cls = _BY_MESSAGE.get(message)
    if cls is not None:
        if write and issubclass(cls, UnavailableError) and message not in _NOT_APPLIED:
            return OutcomeUnknownError(message, code=code)
        retryable = True if message in _RETRYABLE else None
        return cls(message, code=code, retryable=retryable)
    if code is _S.RESOURCE_EXHAUSTED and "larger than max" in message:
        # The client's own send limit: the request never left this process.
        return RequestTooLargeError(message, code=code)
    if message == _GO_DEADLINE:
        # The server saw the call's deadline pass (Go's context error, code UNKNOWN).
        if write:
            return OutcomeUnknownTimeoutError(message, code=code)
        return DeadlineExceededError(message, code=code)
    if write and code in _TRANSPORT_CODES:
        if code is _S.DEADLINE_EXCEEDED:
            return OutcomeUnknownTimeoutError(message, code=code)
        return OutcomeUnknownError(message, code=code)
    fallback = _BY_CODE.get(code, EtcdError) if code is not None else EtcdError
    return fallback(message, code=code)


def from_message(text: str, default: type[EtcdError] = EtcdError) -> EtcdError:
    """Translate an error that reached us as text (e.g. a watch's ``cancel_reason``).

    etcd formats those as ``rpc error: code = X desc = <message>``; the message
    part is looked up like in ``_from_grpc``, otherwise *default* is used.
    """
    code: grpc.StatusCode | None = None
    message = text
    if text.startswith("rpc error: code = ") and " desc = " in text:
        head, message = text.split(" desc = ", 1)
        name = head.removeprefix("rpc error: code = ")
        code = _CODE_BY_GO_NAME.get(name)
    cls = _BY_MESSAGE.get(message, default)
    return cls(message, code=code)


_CODE_BY_GO_NAME: Final[dict[str, grpc.StatusCode]] = {
    "".join(part.title() for part in c.name.split("_")): c for c in grpc.StatusCode
}
