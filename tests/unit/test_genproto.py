"""The generated aetcd._pb package: up to date with protos/, and true to etcd v3.5 on the wire.

Every name and number below was checked against etcd v3.5's own definitions
(the descriptors compiled into the etcd 3.5.1 server binary, and etcd's
api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto, api/authpb/auth.proto,
v3lockpb/v3lock.proto and v3electionpb/v3election.proto).
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor

from aetcd._pb import (
    auth_pb2,
    kv_pb2,
    rpc_pb2,
    rpc_pb2_grpc,
    v3election_pb2,
    v3election_pb2_grpc,
    v3lock_pb2,
    v3lock_pb2_grpc,
)

ROOT = Path(__file__).resolve().parents[2]
GENPROTO = ROOT / "scripts" / "genproto"

# ---------------------------------------------------------------------------
# (a) the committed aetcd/_pb/ is exactly what scripts/genproto produces
# ---------------------------------------------------------------------------


def test_genproto_check_reports_up_to_date() -> None:
    proc = subprocess.run(
        [str(GENPROTO), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert proc.returncode == 0, (
        f"scripts/genproto --check exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def test_generated_modules_are_where_expected() -> None:
    # Services get a _pb2_grpc module; the pure type files do not.
    for name in ("rpc", "v3lock", "v3election"):
        assert importlib.util.find_spec(f"aetcd._pb.{name}_pb2_grpc") is not None
    for name in ("kv", "auth"):
        assert importlib.util.find_spec(f"aetcd._pb.{name}_pb2_grpc") is None
    # Descriptor file names are namespaced under aetcd/_pb/ (no clash with
    # another library registering a bare "rpc.proto"), packages are etcd's.
    files = {
        kv_pb2: ("aetcd/_pb/kv.proto", "mvccpb"),
        auth_pb2: ("aetcd/_pb/auth.proto", "authpb"),
        rpc_pb2: ("aetcd/_pb/rpc.proto", "etcdserverpb"),
        v3lock_pb2: ("aetcd/_pb/v3lock.proto", "v3lockpb"),
        v3election_pb2: ("aetcd/_pb/v3election.proto", "v3electionpb"),
    }
    for module, (fname, package) in files.items():
        assert module.DESCRIPTOR.name == fname
        assert module.DESCRIPTOR.package == package
    # Sibling imports are package-qualified.
    assert [d.name for d in rpc_pb2.DESCRIPTOR.dependencies] == [
        "aetcd/_pb/kv.proto",
        "aetcd/_pb/auth.proto",
    ]
    pb_init = importlib.import_module("aetcd._pb")
    assert "scripts/genproto" in (pb_init.__doc__ or "")


# ---------------------------------------------------------------------------
# (b) wire facts: method paths, field numbers, enum values, oneofs
# ---------------------------------------------------------------------------

# Every RPC of etcd v3.5 with its gRPC path and streaming shape.
UU, US, SS = "unary_unary", "unary_stream", "stream_stream"
METHODS: dict[str, str] = {
    "/etcdserverpb.KV/Range": UU,
    "/etcdserverpb.KV/Put": UU,
    "/etcdserverpb.KV/DeleteRange": UU,
    "/etcdserverpb.KV/Txn": UU,
    "/etcdserverpb.KV/Compact": UU,
    "/etcdserverpb.Watch/Watch": SS,
    "/etcdserverpb.Lease/LeaseGrant": UU,
    "/etcdserverpb.Lease/LeaseRevoke": UU,
    "/etcdserverpb.Lease/LeaseKeepAlive": SS,
    "/etcdserverpb.Lease/LeaseTimeToLive": UU,
    "/etcdserverpb.Lease/LeaseLeases": UU,
    "/etcdserverpb.Cluster/MemberAdd": UU,
    "/etcdserverpb.Cluster/MemberRemove": UU,
    "/etcdserverpb.Cluster/MemberUpdate": UU,
    "/etcdserverpb.Cluster/MemberList": UU,
    "/etcdserverpb.Cluster/MemberPromote": UU,
    "/etcdserverpb.Maintenance/Alarm": UU,
    "/etcdserverpb.Maintenance/Status": UU,
    "/etcdserverpb.Maintenance/Defragment": UU,
    "/etcdserverpb.Maintenance/Hash": UU,
    "/etcdserverpb.Maintenance/HashKV": UU,
    "/etcdserverpb.Maintenance/Snapshot": US,
    "/etcdserverpb.Maintenance/MoveLeader": UU,
    "/etcdserverpb.Maintenance/Downgrade": UU,
    "/etcdserverpb.Auth/AuthEnable": UU,
    "/etcdserverpb.Auth/AuthDisable": UU,
    "/etcdserverpb.Auth/AuthStatus": UU,
    "/etcdserverpb.Auth/Authenticate": UU,
    "/etcdserverpb.Auth/UserAdd": UU,
    "/etcdserverpb.Auth/UserGet": UU,
    "/etcdserverpb.Auth/UserList": UU,
    "/etcdserverpb.Auth/UserDelete": UU,
    "/etcdserverpb.Auth/UserChangePassword": UU,
    "/etcdserverpb.Auth/UserGrantRole": UU,
    "/etcdserverpb.Auth/UserRevokeRole": UU,
    "/etcdserverpb.Auth/RoleAdd": UU,
    "/etcdserverpb.Auth/RoleGet": UU,
    "/etcdserverpb.Auth/RoleList": UU,
    "/etcdserverpb.Auth/RoleDelete": UU,
    "/etcdserverpb.Auth/RoleGrantPermission": UU,
    "/etcdserverpb.Auth/RoleRevokePermission": UU,
    "/v3lockpb.Lock/Lock": UU,
    "/v3lockpb.Lock/Unlock": UU,
    "/v3electionpb.Election/Campaign": UU,
    "/v3electionpb.Election/Proclaim": UU,
    "/v3electionpb.Election/Leader": UU,
    "/v3electionpb.Election/Observe": US,
    "/v3electionpb.Election/Resign": UU,
}


class _RecordingChannel:
    """Stands in for a channel: records which multi-callable each stub asks for."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def _record(self, kind: str) -> Any:
        def make(path: str, *args: object, **kwargs: object) -> object:
            assert path not in self.paths, f"{path} registered twice"
            self.paths[path] = kind
            return object()

        return make

    def __getattr__(self, kind: str) -> Any:
        if kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            return self._record(kind)
        raise AttributeError(kind)


def test_generated_stubs_use_etcd_method_paths() -> None:
    channel = _RecordingChannel()
    stubs = [
        rpc_pb2_grpc.KVStub,
        rpc_pb2_grpc.WatchStub,
        rpc_pb2_grpc.LeaseStub,
        rpc_pb2_grpc.ClusterStub,
        rpc_pb2_grpc.MaintenanceStub,
        rpc_pb2_grpc.AuthStub,
        v3lock_pb2_grpc.LockStub,
        v3election_pb2_grpc.ElectionStub,
    ]
    for stub in stubs:
        stub(channel)  # type: ignore[arg-type]
    assert channel.paths == METHODS


def test_service_descriptors_match_method_table() -> None:
    seen: dict[str, str] = {}
    for module in (rpc_pb2, v3lock_pb2, v3election_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                kind = ("stream_" if method.client_streaming else "unary_") + (
                    "stream" if method.server_streaming else "unary"
                )
                seen[f"/{service.full_name}/{method.name}"] = kind
    assert seen == METHODS


def test_method_message_types() -> None:
    kv = rpc_pb2.DESCRIPTOR.services_by_name["KV"].methods_by_name
    assert kv["Compact"].input_type.full_name == "etcdserverpb.CompactionRequest"
    assert kv["Compact"].output_type.full_name == "etcdserverpb.CompactionResponse"
    auth = rpc_pb2.DESCRIPTOR.services_by_name["Auth"].methods_by_name
    assert auth["UserGrantRole"].input_type.full_name == "etcdserverpb.AuthUserGrantRoleRequest"
    assert auth["RoleRevokePermission"].output_type.full_name == (
        "etcdserverpb.AuthRoleRevokePermissionResponse"
    )
    election = v3election_pb2.DESCRIPTOR.services_by_name["Election"].methods_by_name
    assert election["Observe"].input_type.full_name == "v3electionpb.LeaderRequest"
    assert election["Observe"].output_type.full_name == "v3electionpb.LeaderResponse"
    lock = v3lock_pb2.DESCRIPTOR.services_by_name["Lock"].methods_by_name
    assert lock["Unlock"].input_type.full_name == "v3lockpb.UnlockRequest"


# (message, field, number) as in etcd v3.5.
FIELDS: list[tuple[str, str, int]] = [
    # mvccpb
    ("mvccpb.KeyValue", "key", 1),
    ("mvccpb.KeyValue", "create_revision", 2),
    ("mvccpb.KeyValue", "mod_revision", 3),
    ("mvccpb.KeyValue", "version", 4),
    ("mvccpb.KeyValue", "value", 5),
    ("mvccpb.KeyValue", "lease", 6),
    ("mvccpb.Event", "type", 1),
    ("mvccpb.Event", "kv", 2),
    ("mvccpb.Event", "prev_kv", 3),
    # authpb
    ("authpb.UserAddOptions", "no_password", 1),
    ("authpb.User", "roles", 3),
    ("authpb.User", "options", 4),
    ("authpb.Permission", "permType", 1),
    ("authpb.Permission", "range_end", 3),
    ("authpb.Role", "keyPermission", 2),
    # etcdserverpb: KV
    ("etcdserverpb.ResponseHeader", "cluster_id", 1),
    ("etcdserverpb.ResponseHeader", "member_id", 2),
    ("etcdserverpb.ResponseHeader", "revision", 3),
    ("etcdserverpb.ResponseHeader", "raft_term", 4),
    ("etcdserverpb.RangeRequest", "range_end", 2),
    ("etcdserverpb.RangeRequest", "limit", 3),
    ("etcdserverpb.RangeRequest", "sort_order", 5),
    ("etcdserverpb.RangeRequest", "sort_target", 6),
    ("etcdserverpb.RangeRequest", "serializable", 7),
    ("etcdserverpb.RangeRequest", "keys_only", 8),
    ("etcdserverpb.RangeRequest", "count_only", 9),
    ("etcdserverpb.RangeRequest", "min_mod_revision", 10),
    ("etcdserverpb.RangeRequest", "max_mod_revision", 11),
    ("etcdserverpb.RangeRequest", "min_create_revision", 12),
    ("etcdserverpb.RangeRequest", "max_create_revision", 13),
    ("etcdserverpb.RangeResponse", "kvs", 2),
    ("etcdserverpb.RangeResponse", "more", 3),
    ("etcdserverpb.RangeResponse", "count", 4),
    ("etcdserverpb.PutRequest", "lease", 3),
    ("etcdserverpb.PutRequest", "prev_kv", 4),
    ("etcdserverpb.PutRequest", "ignore_value", 5),
    ("etcdserverpb.PutRequest", "ignore_lease", 6),
    ("etcdserverpb.PutResponse", "prev_kv", 2),
    ("etcdserverpb.DeleteRangeRequest", "prev_kv", 3),
    ("etcdserverpb.DeleteRangeResponse", "deleted", 2),
    ("etcdserverpb.DeleteRangeResponse", "prev_kvs", 3),
    ("etcdserverpb.RequestOp", "request_range", 1),
    ("etcdserverpb.RequestOp", "request_delete_range", 3),
    ("etcdserverpb.RequestOp", "request_txn", 4),
    ("etcdserverpb.ResponseOp", "response_put", 2),
    ("etcdserverpb.ResponseOp", "response_txn", 4),
    ("etcdserverpb.Compare", "result", 1),
    ("etcdserverpb.Compare", "target", 2),
    ("etcdserverpb.Compare", "key", 3),
    ("etcdserverpb.Compare", "version", 4),
    ("etcdserverpb.Compare", "create_revision", 5),
    ("etcdserverpb.Compare", "mod_revision", 6),
    ("etcdserverpb.Compare", "value", 7),
    ("etcdserverpb.Compare", "lease", 8),
    ("etcdserverpb.Compare", "range_end", 64),
    ("etcdserverpb.TxnRequest", "compare", 1),
    ("etcdserverpb.TxnRequest", "success", 2),
    ("etcdserverpb.TxnRequest", "failure", 3),
    ("etcdserverpb.TxnResponse", "succeeded", 2),
    ("etcdserverpb.TxnResponse", "responses", 3),
    ("etcdserverpb.CompactionRequest", "physical", 2),
    # Watch
    ("etcdserverpb.WatchRequest", "create_request", 1),
    ("etcdserverpb.WatchRequest", "cancel_request", 2),
    ("etcdserverpb.WatchRequest", "progress_request", 3),
    ("etcdserverpb.WatchCreateRequest", "start_revision", 3),
    ("etcdserverpb.WatchCreateRequest", "progress_notify", 4),
    ("etcdserverpb.WatchCreateRequest", "filters", 5),
    ("etcdserverpb.WatchCreateRequest", "prev_kv", 6),
    ("etcdserverpb.WatchCreateRequest", "watch_id", 7),
    ("etcdserverpb.WatchCreateRequest", "fragment", 8),
    ("etcdserverpb.WatchCancelRequest", "watch_id", 1),
    ("etcdserverpb.WatchResponse", "watch_id", 2),
    ("etcdserverpb.WatchResponse", "created", 3),
    ("etcdserverpb.WatchResponse", "canceled", 4),
    ("etcdserverpb.WatchResponse", "compact_revision", 5),
    ("etcdserverpb.WatchResponse", "cancel_reason", 6),
    ("etcdserverpb.WatchResponse", "fragment", 7),
    ("etcdserverpb.WatchResponse", "events", 11),
    # Lease
    ("etcdserverpb.LeaseGrantRequest", "TTL", 1),
    ("etcdserverpb.LeaseGrantRequest", "ID", 2),
    ("etcdserverpb.LeaseGrantResponse", "ID", 2),
    ("etcdserverpb.LeaseGrantResponse", "TTL", 3),
    ("etcdserverpb.LeaseGrantResponse", "error", 4),
    ("etcdserverpb.LeaseKeepAliveResponse", "TTL", 3),
    ("etcdserverpb.LeaseTimeToLiveRequest", "keys", 2),
    ("etcdserverpb.LeaseTimeToLiveResponse", "grantedTTL", 4),
    ("etcdserverpb.LeaseTimeToLiveResponse", "keys", 5),
    ("etcdserverpb.LeaseLeasesResponse", "leases", 2),
    ("etcdserverpb.LeaseCheckpoint", "remaining_TTL", 2),
    # Cluster
    ("etcdserverpb.Member", "ID", 1),
    ("etcdserverpb.Member", "name", 2),
    ("etcdserverpb.Member", "peerURLs", 3),
    ("etcdserverpb.Member", "clientURLs", 4),
    ("etcdserverpb.Member", "isLearner", 5),
    ("etcdserverpb.MemberAddRequest", "peerURLs", 1),
    ("etcdserverpb.MemberAddRequest", "isLearner", 2),
    ("etcdserverpb.MemberAddResponse", "member", 2),
    ("etcdserverpb.MemberAddResponse", "members", 3),
    ("etcdserverpb.MemberUpdateRequest", "peerURLs", 2),
    ("etcdserverpb.MemberListRequest", "linearizable", 1),
    # Maintenance
    ("etcdserverpb.AlarmRequest", "action", 1),
    ("etcdserverpb.AlarmRequest", "memberID", 2),
    ("etcdserverpb.AlarmRequest", "alarm", 3),
    ("etcdserverpb.AlarmMember", "alarm", 2),
    ("etcdserverpb.StatusResponse", "version", 2),
    ("etcdserverpb.StatusResponse", "dbSize", 3),
    ("etcdserverpb.StatusResponse", "leader", 4),
    ("etcdserverpb.StatusResponse", "raftIndex", 5),
    ("etcdserverpb.StatusResponse", "raftTerm", 6),
    ("etcdserverpb.StatusResponse", "raftAppliedIndex", 7),
    ("etcdserverpb.StatusResponse", "errors", 8),
    ("etcdserverpb.StatusResponse", "dbSizeInUse", 9),
    ("etcdserverpb.StatusResponse", "isLearner", 10),
    ("etcdserverpb.HashKVRequest", "revision", 1),
    ("etcdserverpb.HashKVResponse", "hash", 2),
    ("etcdserverpb.HashKVResponse", "compact_revision", 3),
    ("etcdserverpb.HashKVResponse", "hash_revision", 4),
    ("etcdserverpb.HashResponse", "hash", 2),
    ("etcdserverpb.SnapshotResponse", "remaining_bytes", 2),
    ("etcdserverpb.SnapshotResponse", "blob", 3),
    ("etcdserverpb.MoveLeaderRequest", "targetID", 1),
    ("etcdserverpb.DowngradeRequest", "action", 1),
    ("etcdserverpb.DowngradeRequest", "version", 2),
    ("etcdserverpb.DowngradeResponse", "version", 2),
    # Auth
    ("etcdserverpb.AuthStatusResponse", "enabled", 2),
    ("etcdserverpb.AuthStatusResponse", "authRevision", 3),
    ("etcdserverpb.AuthenticateResponse", "token", 2),
    ("etcdserverpb.AuthUserAddRequest", "options", 3),
    ("etcdserverpb.AuthUserAddRequest", "hashedPassword", 4),
    ("etcdserverpb.AuthUserChangePasswordRequest", "hashedPassword", 3),
    ("etcdserverpb.AuthUserGrantRoleRequest", "user", 1),
    ("etcdserverpb.AuthUserGrantRoleRequest", "role", 2),
    ("etcdserverpb.AuthRoleGetRequest", "role", 1),
    ("etcdserverpb.AuthRoleGetResponse", "perm", 2),
    ("etcdserverpb.AuthRoleGrantPermissionRequest", "perm", 2),
    ("etcdserverpb.AuthRoleRevokePermissionRequest", "range_end", 3),
    ("etcdserverpb.AuthUserListResponse", "users", 2),
    # v3lockpb
    ("v3lockpb.LockRequest", "name", 1),
    ("v3lockpb.LockRequest", "lease", 2),
    ("v3lockpb.LockResponse", "header", 1),
    ("v3lockpb.LockResponse", "key", 2),
    ("v3lockpb.UnlockRequest", "key", 1),
    # v3electionpb
    ("v3electionpb.CampaignRequest", "name", 1),
    ("v3electionpb.CampaignRequest", "lease", 2),
    ("v3electionpb.CampaignRequest", "value", 3),
    ("v3electionpb.CampaignResponse", "leader", 2),
    ("v3electionpb.LeaderKey", "name", 1),
    ("v3electionpb.LeaderKey", "key", 2),
    ("v3electionpb.LeaderKey", "rev", 3),
    ("v3electionpb.LeaderKey", "lease", 4),
    ("v3electionpb.LeaderResponse", "kv", 2),
    ("v3electionpb.ResignRequest", "leader", 1),
    ("v3electionpb.ProclaimRequest", "leader", 1),
    ("v3electionpb.ProclaimRequest", "value", 2),
]


def _message(full_name: str) -> Any:
    return descriptor_pool.Default().FindMessageTypeByName(full_name)


@pytest.mark.parametrize(("message", "field", "number"), FIELDS)
def test_field_numbers(message: str, field: str, number: int) -> None:
    desc = _message(message)
    assert field in desc.fields_by_name, f"{message} has no field {field!r}"
    assert desc.fields_by_name[field].number == number


def test_field_table_covers_every_file() -> None:
    packages = {m.split(".", 1)[0] for m, _, _ in FIELDS}
    assert packages == {"mvccpb", "authpb", "etcdserverpb", "v3lockpb", "v3electionpb"}
    assert len(FIELDS) >= 40


def test_selected_field_types() -> None:
    # Signedness matters on the wire (zigzag-free varints, but different ranges).
    assert _message("etcdserverpb.ResponseHeader").fields_by_name["cluster_id"].type == (
        FieldDescriptor.TYPE_UINT64
    )
    assert _message("etcdserverpb.ResponseHeader").fields_by_name["revision"].type == (
        FieldDescriptor.TYPE_INT64
    )
    assert _message("etcdserverpb.Member").fields_by_name["ID"].type == FieldDescriptor.TYPE_UINT64
    assert _message("etcdserverpb.LeaseGrantRequest").fields_by_name["ID"].type == (
        FieldDescriptor.TYPE_INT64
    )
    assert _message("etcdserverpb.HashKVResponse").fields_by_name["hash"].type == (
        FieldDescriptor.TYPE_UINT32
    )
    assert _message("authpb.User").fields_by_name["name"].type == FieldDescriptor.TYPE_BYTES
    assert _message("etcdserverpb.AuthUserAddRequest").fields_by_name["name"].type == (
        FieldDescriptor.TYPE_STRING
    )
    filters = _message("etcdserverpb.WatchCreateRequest").fields_by_name["filters"]
    assert filters.is_repeated
    assert filters.enum_type.full_name == "etcdserverpb.WatchCreateRequest.FilterType"


ENUMS: list[tuple[str, str, int]] = [
    ("mvccpb.Event.EventType", "PUT", 0),
    ("mvccpb.Event.EventType", "DELETE", 1),
    ("authpb.Permission.Type", "READ", 0),
    ("authpb.Permission.Type", "WRITE", 1),
    ("authpb.Permission.Type", "READWRITE", 2),
    ("etcdserverpb.RangeRequest.SortOrder", "NONE", 0),
    ("etcdserverpb.RangeRequest.SortOrder", "ASCEND", 1),
    ("etcdserverpb.RangeRequest.SortOrder", "DESCEND", 2),
    ("etcdserverpb.RangeRequest.SortTarget", "KEY", 0),
    ("etcdserverpb.RangeRequest.SortTarget", "VERSION", 1),
    ("etcdserverpb.RangeRequest.SortTarget", "CREATE", 2),
    ("etcdserverpb.RangeRequest.SortTarget", "MOD", 3),
    ("etcdserverpb.RangeRequest.SortTarget", "VALUE", 4),
    ("etcdserverpb.Compare.CompareResult", "EQUAL", 0),
    ("etcdserverpb.Compare.CompareResult", "GREATER", 1),
    ("etcdserverpb.Compare.CompareResult", "LESS", 2),
    ("etcdserverpb.Compare.CompareResult", "NOT_EQUAL", 3),
    ("etcdserverpb.Compare.CompareTarget", "VERSION", 0),
    ("etcdserverpb.Compare.CompareTarget", "CREATE", 1),
    ("etcdserverpb.Compare.CompareTarget", "MOD", 2),
    ("etcdserverpb.Compare.CompareTarget", "VALUE", 3),
    ("etcdserverpb.Compare.CompareTarget", "LEASE", 4),
    ("etcdserverpb.WatchCreateRequest.FilterType", "NOPUT", 0),
    ("etcdserverpb.WatchCreateRequest.FilterType", "NODELETE", 1),
    ("etcdserverpb.AlarmType", "NONE", 0),
    ("etcdserverpb.AlarmType", "NOSPACE", 1),
    ("etcdserverpb.AlarmType", "CORRUPT", 2),
    ("etcdserverpb.AlarmRequest.AlarmAction", "GET", 0),
    ("etcdserverpb.AlarmRequest.AlarmAction", "ACTIVATE", 1),
    ("etcdserverpb.AlarmRequest.AlarmAction", "DEACTIVATE", 2),
    ("etcdserverpb.DowngradeRequest.DowngradeAction", "VALIDATE", 0),
    ("etcdserverpb.DowngradeRequest.DowngradeAction", "ENABLE", 1),
    ("etcdserverpb.DowngradeRequest.DowngradeAction", "CANCEL", 2),
]


def test_enum_values() -> None:
    pool = descriptor_pool.Default()
    by_enum: dict[str, dict[str, int]] = {}
    for enum, name, number in ENUMS:
        by_enum.setdefault(enum, {})[name] = number
    for enum, expected in by_enum.items():
        desc = pool.FindEnumTypeByName(enum)
        assert {v.name: v.number for v in desc.values} == expected, enum


ONEOFS: list[tuple[str, str, list[str]]] = [
    (
        "etcdserverpb.RequestOp",
        "request",
        ["request_range", "request_put", "request_delete_range", "request_txn"],
    ),
    (
        "etcdserverpb.ResponseOp",
        "response",
        ["response_range", "response_put", "response_delete_range", "response_txn"],
    ),
    (
        "etcdserverpb.Compare",
        "target_union",
        ["version", "create_revision", "mod_revision", "value", "lease"],
    ),
    (
        "etcdserverpb.WatchRequest",
        "request_union",
        ["create_request", "cancel_request", "progress_request"],
    ),
]


@pytest.mark.parametrize(("message", "oneof", "members"), ONEOFS)
def test_oneofs(message: str, oneof: str, members: list[str]) -> None:
    desc = _message(message)
    assert list(desc.oneofs_by_name) == [oneof]
    assert [f.name for f in desc.oneofs_by_name[oneof].fields] == members


def test_wire_bytes_of_a_few_messages() -> None:
    # Field 64, length-delimited: tag varint (64 << 3 | 2) = 0x82 0x04.
    assert rpc_pb2.Compare(range_end=b"x").SerializeToString() == b"\x82\x04\x01x"
    # Field 13 varint: tag 0x68.
    assert rpc_pb2.RangeRequest(max_create_revision=5).SerializeToString() == b"\x68\x05"
    # WatchRequest{create_request{key="k", watch_id=7, fragment=true}}.
    req = rpc_pb2.WatchRequest(
        create_request=rpc_pb2.WatchCreateRequest(key=b"k", watch_id=7, fragment=True)
    )
    assert req.SerializeToString() == b"\x0a\x07\x0a\x01k\x38\x07\x40\x01"
    # WatchResponse.events is field 11: tag (11 << 3 | 2) = 0x5a.
    resp = rpc_pb2.WatchResponse(events=[kv_pb2.Event(type=kv_pb2.Event.DELETE)])
    assert resp.SerializeToString() == b"\x5a\x02\x08\x01"


def test_no_fields_newer_than_etcd_3_5() -> None:
    # Fields that exist only in etcd >= 3.6 must not be in the schema.
    assert "storageVersion" not in _message("etcdserverpb.StatusResponse").fields_by_name
    assert "dbSizeQuota" not in _message("etcdserverpb.StatusResponse").fields_by_name
    assert "downgradeInfo" not in _message("etcdserverpb.StatusResponse").fields_by_name
    assert "version" not in _message("etcdserverpb.SnapshotResponse").fields_by_name
    with pytest.raises(KeyError):
        _message("etcdserverpb.DowngradeInfo")
