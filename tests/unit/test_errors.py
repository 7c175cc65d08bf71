"""The one translation point: gRPC failures -> the aetcd error tree."""

from __future__ import annotations

import grpc
import pytest

import aetcd
from aetcd import errors
from aetcd.errors import _from_grpc


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


S = grpc.StatusCode

# (etcd's exact message, its gRPC code per rpctypes, expected class)
ETCD_ERRORS = [
    ("etcdserver: key is not provided", S.INVALID_ARGUMENT, aetcd.EmptyKeyError),
    ("etcdserver: key not found", S.INVALID_ARGUMENT, aetcd.KeyNotFoundError),
    ("etcdserver: value is provided", S.INVALID_ARGUMENT, aetcd.ValueProvidedError),
    ("etcdserver: lease is provided", S.INVALID_ARGUMENT, aetcd.LeaseProvidedError),
    ("etcdserver: too many operations in txn request", S.INVALID_ARGUMENT, aetcd.TooManyOpsError),
    ("etcdserver: duplicate key given in txn request", S.INVALID_ARGUMENT, aetcd.DuplicateKeyError),
    ("etcdserver: mvcc: required revision has been compacted", S.OUT_OF_RANGE, aetcd.CompactedError),
    ("etcdserver: mvcc: required revision is a future revision", S.OUT_OF_RANGE, aetcd.FutureRevisionError),
    ("etcdserver: mvcc: database space exceeded", S.RESOURCE_EXHAUSTED, aetcd.NoSpaceError),
    ("etcdserver: requested lease not found", S.NOT_FOUND, aetcd.LeaseNotFoundError),
    ("etcdserver: lease already exists", S.FAILED_PRECONDITION, aetcd.LeaseExistsError),
    ("etcdserver: too large lease TTL", S.OUT_OF_RANGE, aetcd.LeaseTTLTooLargeError),
    ("etcdserver: member ID already exist", S.FAILED_PRECONDITION, aetcd.ClusterError),
    ("etcdserver: Peer URLs already exists", S.FAILED_PRECONDITION, aetcd.ClusterError),
    ("etcdserver: member not found", S.NOT_FOUND, aetcd.ClusterError),
    ("etcdserver: given member URLs are invalid", S.INVALID_ARGUMENT, aetcd.InvalidArgumentError),
    ("etcdserver: request is too large", S.INVALID_ARGUMENT, aetcd.RequestTooLargeError),
    ("etcdserver: too many requests", S.RESOURCE_EXHAUSTED, aetcd.TooManyRequestsError),
    ("etcdserver: user name already exists", S.FAILED_PRECONDITION, aetcd.AuthAdminError),
    ("etcdserver: role name not found", S.FAILED_PRECONDITION, aetcd.AuthAdminError),
    (
        "etcdserver: authentication failed, invalid user ID or password",
        S.INVALID_ARGUMENT,
        aetcd.AuthenticationError,
    ),
    ("etcdserver: permission denied", S.PERMISSION_DENIED, aetcd.PermissionDeniedError),
    ("etcdserver: invalid auth token", S.UNAUTHENTICATED, aetcd.AuthenticationError),
    ("etcdserver: revision of auth store is old", S.INVALID_ARGUMENT, aetcd.AuthenticationError),
    ("etcdserver: authentication is not enabled", S.FAILED_PRECONDITION, aetcd.AuthAdminError),
    ("etcdserver: no leader", S.UNAVAILABLE, aetcd.NoLeaderError),
    ("etcdserver: leader changed", S.UNAVAILABLE, aetcd.LeaderChangedError),
    ("etcdserver: request timed out", S.UNAVAILABLE, aetcd.ServerTimeoutError),
    (
        "etcdserver: request timed out, possibly due to connection lost",
        S.UNAVAILABLE,
        aetcd.ServerTimeoutError,
    ),
    ("etcdserver: server stopped", S.UNAVAILABLE, aetcd.UnavailableError),
    ("etcdserver: corrupt cluster", S.DATA_LOSS, aetcd.CorruptError),
    ("etcdserver: rpc not supported for learner", S.UNAVAILABLE, aetcd.NotSupportedForLearnerError),
    ("etcdserver: bad leader transferee", S.FAILED_PRECONDITION, aetcd.ClusterError),
    ("etcdserver: no inflight downgrade job", S.FAILED_PRECONDITION, aetcd.ClusterError),
]


@pytest.mark.parametrize(("message", "code", "cls"), ETCD_ERRORS)
def test_etcd_messages_map_to_typed_errors(
    message: str, code: grpc.StatusCode, cls: type[aetcd.EtcdError]
) -> None:
    err = _from_grpc(FakeRpcError(code, message))
    assert type(err) is cls
    assert err.message == message
    assert err.code is code
    assert message in str(err)


def test_every_table_entry_is_an_etcd_message() -> None:
    # The table is keyed by exact server text: every key must be one of etcd's.
    for message, cls in errors._BY_MESSAGE.items():
        assert message.startswith("etcdserver: ")
        assert issubclass(cls, aetcd.EtcdError)


def test_retryable_flags() -> None:
    assert _from_grpc(FakeRpcError(S.UNAVAILABLE, "etcdserver: no leader")).retryable
    assert not _from_grpc(FakeRpcError(S.INVALID_ARGUMENT, "etcdserver: key not found")).retryable
    assert _from_grpc(FakeRpcError(S.UNAUTHENTICATED, "etcdserver: invalid auth token")).retryable
    assert _from_grpc(FakeRpcError(S.UNAVAILABLE, "Connection refused")).retryable
    assert not _from_grpc(
        FakeRpcError(S.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
    ).retryable


def test_transport_failures_of_reads() -> None:
    err = _from_grpc(FakeRpcError(S.UNAVAILABLE, "failed to connect to all addresses"))
    assert type(err) is aetcd.ConnectionFailedError
    timeout = _from_grpc(FakeRpcError(S.DEADLINE_EXCEEDED, "Deadline Exceeded"))
    assert type(timeout) is aetcd.DeadlineExceededError
    assert isinstance(timeout, TimeoutError)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (S.UNAVAILABLE, "Socket closed"),
        (S.INTERNAL, "RST_STREAM"),
        (S.UNKNOWN, "Stream removed"),
        (S.UNAVAILABLE, "etcdserver: request timed out"),
        (S.UNAVAILABLE, "etcdserver: leader changed"),
        (S.UNAVAILABLE, "etcdserver: server stopped"),
        (S.UNAVAILABLE, "etcdserver: request timed out, possibly due to connection lost"),
    ],
)
def test_ambiguous_write_failures_are_outcome_unknown(code: grpc.StatusCode, message: str) -> None:
    err = _from_grpc(FakeRpcError(code, message), write=True)
    assert isinstance(err, aetcd.OutcomeUnknownError)
    assert not err.retryable
    assert err.message == message


def test_write_deadline_is_both_timeout_and_outcome_unknown() -> None:
    err = _from_grpc(FakeRpcError(S.DEADLINE_EXCEEDED, "Deadline Exceeded"), write=True)
    assert isinstance(err, aetcd.OutcomeUnknownError)
    assert isinstance(err, aetcd.DeadlineExceededError)
    assert isinstance(err, TimeoutError)
    assert not err.retryable


@pytest.mark.parametrize(
    "message",
    ["etcdserver: no leader", "etcdserver: too many requests", "etcdserver: not capable"],
)
def test_writes_rejected_before_raft_are_not_outcome_unknown(message: str) -> None:
    err = _from_grpc(FakeRpcError(S.UNAVAILABLE, message), write=True)
    assert not isinstance(err, aetcd.OutcomeUnknownError)


def test_client_send_limit_is_request_too_large() -> None:
    err = _from_grpc(
        FakeRpcError(S.RESOURCE_EXHAUSTED, "Sent message larger than max (3000000 vs. 2097152)")
    )
    assert type(err) is aetcd.RequestTooLargeError


def test_unknown_codes_fall_back_to_base_classes() -> None:
    assert type(_from_grpc(FakeRpcError(S.PERMISSION_DENIED, "nope"))) is aetcd.PermissionDeniedError
    assert type(_from_grpc(FakeRpcError(S.UNAUTHENTICATED, "x"))) is aetcd.AuthenticationError
    assert type(_from_grpc(FakeRpcError(S.FAILED_PRECONDITION, "x"))) is aetcd.EtcdError


def test_builtin_bases_and_repr() -> None:
    assert issubclass(aetcd.InvalidArgumentError, ValueError)
    assert issubclass(aetcd.DeadlineExceededError, TimeoutError)
    assert issubclass(aetcd.LockTimeoutError, TimeoutError)
    assert issubclass(aetcd.ClientClosedError, RuntimeError)
    err = aetcd.CompactedError("gone", compact_revision=7)
    assert err.compact_revision == 7
    assert repr(err) == "CompactedError('gone', code=None)"


def test_every_error_class_documents_itself() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
            assert name in errors.__doc__ or obj is errors.EtcdError or name.startswith(
                ("Empty", "TooMany", "Duplicate", "RequestTooLarge", "KeyNotFound",
                 "ValueProvided", "LeaseProvided", "LeaseTTL")
            ), f"{name} missing from the tree drawing"


def test_rejected_takes_only_messages_etcd_has() -> None:
    err = errors._rejected(aetcd.TooManyOpsError, "etcdserver: too many operations in txn request", "x")
    assert (err.message, err.code, err.detail) == (
        "etcdserver: too many operations in txn request",
        S.INVALID_ARGUMENT,
        "x",
    )
    assert str(err) == "etcdserver: too many operations in txn request (x)"
    for message in errors._LOCAL_CODES:
        assert message in errors._BY_MESSAGE  # the server's answer maps back
    with pytest.raises(KeyError):
        errors._rejected(aetcd.InvalidArgumentError, "key must not be empty", "x")
