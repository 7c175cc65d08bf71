"""A deadline that has passed before a call is sent fails it, and nothing is sent.

The deadline is never stretched (for instance to give gRPC a last
millisecond): a read raises :class:`aetcd.DeadlineExceededError`, and a write
raises the same definite error, not :class:`aetcd.OutcomeUnknownError`,
because it was not applied. Covered for calls sent alone and for the read and
write coalescing paths.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import aetcd

# Passed before any call can be sent, even on a fast machine.
_GONE = 1e-9


def _assert_not_sent(error: BaseException) -> None:
    assert isinstance(error, aetcd.DeadlineExceededError), repr(error)
    assert not isinstance(error, aetcd.OutcomeUnknownError), repr(error)
    assert "nothing was sent" in error.message, error.message


@pytest.mark.parametrize("coalesce_reads", [True, False])
async def test_expired_read_fails(etcd_server: Any, etcd_prefix: str, coalesce_reads: bool) -> None:
    key = etcd_prefix + "k"
    async with aetcd.Client(etcd_server.endpoint, coalesce_reads=coalesce_reads) as client:
        await client.put(key, "v")  # warm: connected, nothing left to wait for
        for _ in range(20):
            with pytest.raises(aetcd.DeadlineExceededError) as caught:
                await client.get(key, timeout=_GONE)
            _assert_not_sent(caught.value)
        # Concurrent reads (the first goes alone, the rest as one batch): only
        # the ones whose deadline passed fail.
        timeouts = [_GONE if i % 2 else 5.0 for i in range(10)]
        results = await asyncio.gather(
            *(client.get(key, timeout=t) for t in timeouts), return_exceptions=True
        )
        for t, result in zip(timeouts, results, strict=True):
            if t == _GONE:
                _assert_not_sent(result)
            else:
                assert isinstance(result, aetcd.GetResult) and result.kvs[0].value == b"v"


@pytest.mark.parametrize("coalesce_writes", [False, True])
async def test_expired_write_is_not_sent(
    etcd_server: Any, etcd_prefix: str, coalesce_writes: bool
) -> None:
    p = etcd_prefix
    async with aetcd.Client(etcd_server.endpoint, coalesce_writes=coalesce_writes) as client:
        await client.put(p + "kept", "v")
        for i in range(20):
            with pytest.raises(aetcd.DeadlineExceededError) as caught:
                await client.put(f"{p}put{i}", "v", timeout=_GONE)
            _assert_not_sent(caught.value)
            with pytest.raises(aetcd.DeadlineExceededError) as caught:
                await client.delete(p + "kept", timeout=_GONE)
            _assert_not_sent(caught.value)
        with pytest.raises(aetcd.DeadlineExceededError) as caught:
            await client.txn(success=[aetcd.Op.put(p + "txn", "v")], timeout=_GONE)
        _assert_not_sent(caught.value)
        # Concurrent writes (one batch with coalesce_writes): the expired ones
        # fail, not sent; the others are applied.
        timeouts = [_GONE if i % 2 else 5.0 for i in range(10)]
        results = await asyncio.gather(
            *(client.put(f"{p}batch{i}", "v", timeout=t) for i, t in enumerate(timeouts)),
            return_exceptions=True,
        )
        for t, result in zip(timeouts, results, strict=True):
            if t == _GONE:
                _assert_not_sent(result)
            else:
                assert isinstance(result, aetcd.PutResult), repr(result)
        # Nothing of the failed writes reached the server.
        stored = await client.get(p, prefix=True, keys_only=True)
        expected = {b"kept"} | {f"batch{i}".encode() for i in range(0, 10, 2)}
        assert {kv.key[len(p) :] for kv in stored.kvs} == expected
