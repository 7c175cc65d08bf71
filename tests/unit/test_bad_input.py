"""Bad input is refused with a typed error before any I/O (reliability.md §7).

The client points at a TCP sink that records every byte it receives: after all
the bad calls, the sink must have seen no connection at all, which proves no
RPC was attempted.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import grpc
import pytest

import aetcd
from aetcd import Compare, Op

Call = Callable[[aetcd.Client], Coroutine[Any, Any, object]]


class Sink:
    def __init__(self) -> None:
        self.connections = 0
        self.received = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while data := await reader.read(65536):
            self.received += len(data)
        writer.close()

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    yield s
    s.server.close()
    await s.server.wait_closed()


BIG = b"x" * (1536 * 1024 + 1)
K = "k"

CASES: list[tuple[str, Call, type[BaseException]]] = [
    # B1 / B24: keys
    ("B1 empty key put", lambda c: c.put("", "v"), aetcd.EmptyKeyError),
    ("B1 empty key get", lambda c: c.get(b""), aetcd.EmptyKeyError),
    ("B1 empty key delete", lambda c: c.delete(""), aetcd.EmptyKeyError),
    ("B1 empty key with range_end", lambda c: c.get("", range_end="z"), aetcd.EmptyKeyError),
    ("B24 int key", lambda c: c.put(1, "v"), TypeError),  # type: ignore[arg-type]
    ("B24 None key", lambda c: c.get(None), TypeError),  # type: ignore[arg-type]
    ("B24 float value", lambda c: c.put(K, 1.5), TypeError),  # type: ignore[arg-type]
    ("B24 None value", lambda c: c.put(K, None), TypeError),  # type: ignore[arg-type]
    ("B24 int range_end", lambda c: c.get(K, range_end=5), TypeError),  # type: ignore[arg-type]
    # B21 / B25 / B26: integers
    ("B21 negative revision", lambda c: c.get(K, revision=-1), aetcd.InvalidArgumentError),
    ("B21 negative limit", lambda c: c.get(K, limit=-5), aetcd.InvalidArgumentError),
    ("B21 negative min_mod", lambda c: c.get(K, min_mod_revision=-1), aetcd.InvalidArgumentError),
    ("B25 bool revision", lambda c: c.get(K, revision=True), TypeError),
    ("B25 bool limit", lambda c: c.get(K, limit=False), TypeError),
    ("B25 bool lease", lambda c: c.put(K, "v", lease=True), TypeError),
    ("B26 revision 2**63", lambda c: c.get(K, revision=2**63), aetcd.InvalidArgumentError),
    ("B26 limit 2**64", lambda c: c.get(K, limit=2**64), aetcd.InvalidArgumentError),
    ("B13 negative lease", lambda c: c.put(K, "v", lease=-7), aetcd.InvalidArgumentError),
    ("str lease", lambda c: c.put(K, "v", lease="1"), TypeError),  # type: ignore[arg-type]
    ("float revision", lambda c: c.get(K, revision=1.0), TypeError),  # type: ignore[arg-type]
    ("compact revision 0", lambda c: c.compact(0), aetcd.InvalidArgumentError),
    ("compact bool physical", lambda c: c.compact(5, physical=1), TypeError),  # type: ignore[arg-type]
    # flags and enums
    ("int flag", lambda c: c.get(K, keys_only=1), TypeError),  # type: ignore[arg-type]
    ("str flag", lambda c: c.put(K, "v", prev_kv="yes"), TypeError),  # type: ignore[arg-type]
    ("bad sort order", lambda c: c.get(K, sort_order=7), aetcd.InvalidArgumentError),  # type: ignore[arg-type]
    ("str sort target", lambda c: c.get(K, sort_target="key"), TypeError),  # type: ignore[arg-type]
    ("prefix + range_end", lambda c: c.get(K, prefix=True, range_end="z"), aetcd.InvalidArgumentError),
    ("prefix + from_key", lambda c: c.delete(K, prefix=True, from_key=True), aetcd.InvalidArgumentError),
    # B22: ignore_value / ignore_lease
    ("B22 ignore_value + value", lambda c: c.put(K, "v", ignore_value=True), aetcd.ValueProvidedError),
    ("B22 ignore_lease + lease", lambda c: c.put(K, "v", lease=5, ignore_lease=True), aetcd.LeaseProvidedError),
    # B5 / B8: sizes and counts
    ("B5 put too large", lambda c: c.put(K, BIG), aetcd.RequestTooLargeError),
    ("B5 txn too large", lambda c: c.txn(success=[Op.put(K, BIG)]), aetcd.RequestTooLargeError),
    ("B8 129 ops", lambda c: c.txn(success=[Op.get(f"k{i}") for i in range(129)]), aetcd.TooManyOpsError),
    ("B8 129 compares", lambda c: c.txn(compare=[Compare.version(f"k{i}") == 0 for i in range(129)]), aetcd.TooManyOpsError),
    (
        "B8 nested budget",
        lambda c: c.txn(
            success=[Op.get(f"k{i}") for i in range(100)]
            + [Op.txn([], [Op.get(f"n{i}") for i in range(29)])]
        ),
        aetcd.TooManyOpsError,
    ),
    # B3 / B4 / B28: txn structure
    ("B3 empty compare key", lambda c: c.txn(compare=[Compare.version("") == 0]), aetcd.EmptyKeyError),
    ("B4 non-op in branch", lambda c: c.txn(success=["put k v"]), TypeError),  # type: ignore[list-item]
    ("B4 None in branch", lambda c: c.txn(success=[None]), TypeError),  # type: ignore[list-item]
    ("B4 bool compare", lambda c: c.txn(compare=[True]), TypeError),  # type: ignore[list-item]
    ("B4 single op not list", lambda c: c.txn(success=Op.get(K)), TypeError),  # type: ignore[arg-type]
    ("B28 value compare with int", lambda c: c.txn(compare=[Compare.value(K) == 1]), TypeError),
    ("B28 version compare with bytes", lambda c: c.txn(compare=[Compare.version(K) == b"1"]), TypeError),
    ("B28 version compare with bool", lambda c: c.txn(compare=[Compare.version(K) == True]), TypeError),  # noqa: E712
    ("B28 mod compare negative", lambda c: c.txn(compare=[Compare.mod_revision(K) > -1]), aetcd.InvalidArgumentError),
    ("B28 lease compare with str", lambda c: c.txn(compare=[Compare.lease(K) == "1"]), TypeError),
    # B29: timeouts
    ("B29 zero timeout", lambda c: c.get(K, timeout=0), aetcd.InvalidArgumentError),
    ("B29 negative timeout", lambda c: c.get(K, timeout=-1), aetcd.InvalidArgumentError),
    ("B29 NaN timeout", lambda c: c.get(K, timeout=math.nan), aetcd.InvalidArgumentError),
    ("B29 str timeout", lambda c: c.put(K, "v", timeout="1"), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("name", "call", "error"), CASES, ids=[c[0] for c in CASES])
async def test_rejected_before_any_io(
    sink: Sink, name: str, call: Call, error: type[BaseException]
) -> None:
    async with aetcd.Client(sink.endpoint, timeout=1.0) as client:
        with pytest.raises(error):
            await asyncio.wait_for(call(client), 1.0)
    await asyncio.sleep(0)
    assert sink.connections == 0, f"{name}: an RPC was attempted"
    assert sink.received == 0


def test_local_errors_are_typed_and_worded_as_etcd() -> None:
    with pytest.raises(aetcd.EmptyKeyError) as info:
        Op.put("", "v")
    assert isinstance(info.value, aetcd.InvalidArgumentError)
    assert isinstance(info.value, ValueError)
    assert not info.value.retryable
    # etcd's text and code (checked against a real server in test_local_errors.py)
    assert info.value.message == "etcdserver: key is not provided"
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert str(info.value) == "etcdserver: key is not provided (key must not be empty)"
    # a fault etcd has no message for keeps aetcd's own, with no code
    with pytest.raises(aetcd.InvalidArgumentError) as negative:
        Op.get("k", revision=-1)
    assert negative.value.code is None and negative.value.detail is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"endpoints": "nohost"}, aetcd.InvalidArgumentError),
        ({"endpoints": "127.0.0.1:notaport"}, aetcd.InvalidArgumentError),
        ({"endpoints": "127.0.0.1:70000"}, aetcd.InvalidArgumentError),
        ({"endpoints": "ftp://127.0.0.1:2379"}, aetcd.InvalidArgumentError),
        ({"endpoints": "http://127.0.0.1:2379/path"}, aetcd.InvalidArgumentError),
        ({"endpoints": []}, aetcd.InvalidArgumentError),
        ({"endpoints": [2379]}, TypeError),
        ({"endpoints": ["http://a:1", "https://b:2"]}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "username": "root"}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "password": "pw"}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "timeout": 0}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "timeout": math.nan}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "max_txn_ops": 0}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "max_request_bytes": 3 * 1024 * 1024}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "keepalive_time": 1.0}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "connect_timeout": 0}, aetcd.InvalidArgumentError),
        ({"endpoints": "a:1", "connect_timeout": "2s"}, TypeError),
        ({"endpoints": "a:1", "tls": "ca.pem"}, TypeError),
    ],
)
def test_bad_client_config(kwargs: dict[str, Any], error: type[BaseException]) -> None:
    endpoints = kwargs.pop("endpoints")
    with pytest.raises(error):
        aetcd.Client(endpoints, **kwargs)


def test_tls_needs_cert_and_key_together() -> None:
    with pytest.raises(aetcd.InvalidArgumentError):
        aetcd.TLS(cert=b"cert")
    with pytest.raises(aetcd.InvalidArgumentError):
        aetcd.TLS(key=b"key")


def test_password_never_in_repr() -> None:
    client = aetcd.Client("127.0.0.1:2379", username="root", password="s3cret-pw")
    assert "s3cret-pw" not in repr(client)
    assert "s3cret-pw" not in repr(client.settings)
    tls = aetcd.TLS(cert=b"CERT", key=b"PRIVATE-KEY-BYTES")
    assert "PRIVATE-KEY-BYTES" not in repr(tls)
