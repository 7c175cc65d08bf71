"""Errors aetcd raises before any I/O say what a real etcd says for the same request.

Each case makes a bad call through the client (refused locally) and sends the
same request straight to the server through the raw generated stub (no local
check): the local error must carry the server's exact message and gRPC code,
be the class :func:`aetcd.errors._from_grpc` makes of the server's answer, and
keep the local detail in ``str()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import grpc
import pytest

import aetcd
from aetcd import Compare, Op
from aetcd._pb import rpc_pb2, rpc_pb2_grpc
from aetcd.errors import _from_grpc
from aetcd.lease import MAX_LEASE_TTL

BIG = b"x" * 1782596  # over the default 1.5 MiB --max-request-bytes, under gRPC's 2 MiB

Stubs = dict[str, Any]
Local = Callable[[aetcd.Client], Coroutine[Any, Any, object]]
Raw = Callable[[Stubs], Any]

R = rpc_pb2
CASES: list[tuple[str, Local, Raw, str]] = [
    (
        "put empty key",
        lambda c: c.put("", "v"),
        lambda s: s["kv"].Put(R.PutRequest(key=b"", value=b"v")),
        "key must not be empty",
    ),
    (
        "get empty key",
        lambda c: c.get(b""),
        lambda s: s["kv"].Range(R.RangeRequest(key=b"")),
        "key must not be empty",
    ),
    (
        "delete empty key",
        lambda c: c.delete(""),
        lambda s: s["kv"].DeleteRange(R.DeleteRangeRequest(key=b"")),
        "key must not be empty",
    ),
    (
        "txn compare on an empty key",
        lambda c: c.txn(compare=[Compare.version("") == 0]),
        lambda s: s["kv"].Txn(R.TxnRequest(compare=[R.Compare(key=b"", target=R.Compare.VERSION)])),
        "key must not be empty",
    ),
    (
        "txn of 129 ops",
        lambda c: c.txn(success=[Op.get(f"k{i}") for i in range(129)]),
        lambda s: s["kv"].Txn(
            R.TxnRequest(
                success=[
                    R.RequestOp(request_range=R.RangeRequest(key=b"k%d" % i)) for i in range(129)
                ]
            )
        ),
        "txn has 129 operations at one level, more than max_txn_ops=128",
    ),
    (
        "put of 1.7 MiB",
        lambda c: c.put("k", BIG),
        lambda s: s["kv"].Put(R.PutRequest(key=b"k", value=BIG)),
        "put of 1782597 bytes exceeds max_request_bytes=1572864",
    ),
    (
        "txn of 1.7 MiB",
        lambda c: c.txn(success=[Op.put("k", BIG)]),
        lambda s: s["kv"].Txn(
            R.TxnRequest(success=[R.RequestOp(request_put=R.PutRequest(key=b"k", value=BIG))])
        ),
        "exceeds max_request_bytes=1572864",
    ),
    (
        "put with a value and ignore_value",
        lambda c: c.put("k", "v", ignore_value=True),
        lambda s: s["kv"].Put(R.PutRequest(key=b"k", value=b"v", ignore_value=True)),
        "a value cannot be given with ignore_value=True",
    ),
    (
        "put with a lease and ignore_lease",
        lambda c: c.put("k", "", lease=5, ignore_lease=True),
        lambda s: s["kv"].Put(R.PutRequest(key=b"k", lease=5, ignore_lease=True)),
        "a lease cannot be given with ignore_lease=True",
    ),
    (
        "lease TTL too large",
        lambda c: c.grant(MAX_LEASE_TTL + 1),
        lambda s: s["lease"].LeaseGrant(R.LeaseGrantRequest(TTL=MAX_LEASE_TTL + 1)),
        f"ttl must be at most {MAX_LEASE_TTL} seconds",
    ),
    (
        "user_add with an empty name",
        lambda c: c.user_add("", "pw"),
        lambda s: s["auth"].UserAdd(R.AuthUserAddRequest(name="", password="pw")),
        "name must not be empty",
    ),
    (
        "role_add with an empty name",
        lambda c: c.role_add(""),
        lambda s: s["auth"].RoleAdd(R.AuthRoleAddRequest(name="")),
        "name must not be empty",
    ),
    (
        "downgrade validate without a version",
        lambda c: c.downgrade(aetcd.DowngradeAction.VALIDATE, ""),
        lambda s: s["maintenance"].Downgrade(R.DowngradeRequest(action=0, version="")),
        "a downgrade VALIDATE needs a target version",
    ),
]


# Where the server's class differs: etcd's "user name is empty" also means "no
# credentials" on Authenticate, but an empty name given to user_add/role_add is a
# bad argument (a ValueError).
BAD_ARGUMENT = {
    "etcdserver: user name is empty": aetcd.InvalidArgumentError,
    "etcdserver: role name is empty": aetcd.InvalidArgumentError,
}


@pytest.fixture
async def stubs(etcd_server: Any) -> AsyncIterator[Stubs]:
    options = [("grpc.max_send_message_length", 4 << 20)]
    async with grpc.aio.insecure_channel(etcd_server.endpoint, options=options) as channel:
        yield {
            "kv": rpc_pb2_grpc.KVStub(channel),
            "lease": rpc_pb2_grpc.LeaseStub(channel),
            "auth": rpc_pb2_grpc.AuthStub(channel),
            "maintenance": rpc_pb2_grpc.MaintenanceStub(channel),
        }


@pytest.mark.parametrize(
    ("local", "raw", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_local_error_matches_the_server(
    etcd_client: aetcd.Client, stubs: Stubs, local: Local, raw: Raw, detail: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as server:
        await raw(stubs)
    said = _from_grpc(server.value)
    with pytest.raises(aetcd.InvalidArgumentError) as info:
        await local(etcd_client)
    err = info.value
    assert err.message == server.value.details()
    assert err.code is server.value.code()
    assert type(err) is BAD_ARGUMENT.get(err.message, type(said))
    assert err.detail is not None and detail in err.detail
    assert str(err) == f"{err.message} ({err.detail})"
    assert repr(err).endswith(f"code={err.code.name}, detail={err.detail!r})")
