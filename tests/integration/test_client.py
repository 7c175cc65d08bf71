"""Client lifecycle, deadlines, cancellation, fork safety, round-trips."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aetcd


async def test_lifecycle_and_lazy_open(etcd_server: object) -> None:
    client = aetcd.Client(etcd_server.endpoint)  # type: ignore[attr-defined]
    assert "unopened" in repr(client)
    assert not client.closed
    await client.put("t/lazy", "1")  # opens on first use
    assert "opened" in repr(client)
    await client.close()
    assert client.closed
    with pytest.raises(aetcd.ClientClosedError, match="closed"):
        await client.get("t/lazy")
    with pytest.raises(aetcd.ClientClosedError):
        await client.connect()
    await client.close()  # idempotent


async def test_context_manager_and_endpoint_spellings(etcd_server: object) -> None:
    ep = etcd_server.endpoint  # type: ignore[attr-defined]
    for spelling in (ep, f"http://{ep}", [ep, f"http://{ep}"]):
        async with aetcd.Client(spelling) as client:
            assert (await client.get("t/x")).header.revision > 0
        assert client.closed


async def test_hostname_endpoint(etcd_server: object) -> None:
    port = etcd_server.endpoint.rsplit(":", 1)[1]  # type: ignore[attr-defined]
    async with aetcd.Client([f"localhost:{port}", f"127.0.0.1:{port}"]) as client:
        assert (await client.get("t/x")).header.revision > 0


async def test_deadline_on_paused_server(etcd_server_factory: object) -> None:
    server = await etcd_server_factory()  # type: ignore[operator]
    async with aetcd.Client(server.endpoint, timeout=0.5) as client:
        await client.put("k", "v")
        server.pause()
        try:
            start = time.monotonic()
            with pytest.raises(aetcd.DeadlineExceededError) as read:
                await client.get("k")
            assert not isinstance(read.value, aetcd.OutcomeUnknownError)
            assert read.value.retryable
            assert time.monotonic() - start < 2.0
            with pytest.raises(aetcd.OutcomeUnknownError) as write:
                await client.put("k", "w", timeout=0.3)
            assert isinstance(write.value, TimeoutError)
            assert not write.value.retryable
            # Cancelling the awaiting task ends the call at once.
            task = asyncio.create_task(client.get("k", timeout=30))
            await asyncio.sleep(0.2)
            start = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - start < 0.5
        finally:
            server.resume()
        # The channel is still usable after timeouts and cancellation.
        assert (await client.get("k", timeout=5)).kvs[0].key == b"k"


async def test_reads_ride_out_a_restart(etcd_server_factory: object) -> None:
    server = await etcd_server_factory()  # type: ignore[operator]
    async with aetcd.Client(server.endpoint, timeout=15) as client:
        await client.put("k", "v")
        server.kill()
        restart = asyncio.create_task(server.restart())
        kv = (await client.get("k")).first  # retried until the server is back
        assert kv is not None and kv.value == b"v"
        await restart


async def test_unreachable_endpoint_times_out(unused_tcp_port: int) -> None:
    async with aetcd.Client(f"127.0.0.1:{unused_tcp_port}", timeout=0.5) as client:
        with pytest.raises(aetcd.DeadlineExceededError):
            await client.get("k")
        # Never sent (no member connected): definitely not applied.
        with pytest.raises(aetcd.DeadlineExceededError) as write:
            await client.put("k", "v")
        assert not isinstance(write.value, aetcd.OutcomeUnknownError)
        assert "nothing was sent" in write.value.message


async def test_use_after_fork_raises_clear_error(etcd_server: object) -> None:
    async with aetcd.Client(etcd_server.endpoint) as client:  # type: ignore[attr-defined]
        await client.get("t/fork")
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 3
            try:
                os.close(read_fd)
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(client.get("t/fork"))
                    code = 1
                except aetcd.ClientClosedError as exc:
                    code = 0 if "fork" in str(exc) else 2
                os.write(write_fd, bytes([code]))
            finally:
                os._exit(code)
        os.close(write_fd)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        result = os.read(read_fd, 1)
        os.close(read_fd)
        assert result == b"\x00", f"child reported {result!r}, status {status}"
        # The parent's client is unaffected.
        assert (await client.get("t/fork")).header.revision > 0


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(key=st.binary(min_size=1, max_size=64), value=st.binary(max_size=256))
async def test_arbitrary_bytes_roundtrip(
    etcd_client: aetcd.Client, etcd_prefix: str, key: bytes, value: bytes
) -> None:
    full = etcd_prefix.encode() + key
    await etcd_client.put(full, value)
    kv = (await etcd_client.get(full)).first
    assert kv is not None and kv.key == full and kv.value == value


async def test_connect_waits_for_a_connection_within_its_timeout(
    etcd_server: object, unused_tcp_port: int
) -> None:
    async with aetcd.Client(etcd_server.endpoint) as client:  # type: ignore[attr-defined]
        await client.connect(timeout=5)  # up at once
        await client.connect()  # again: a no-op
    nobody = aetcd.Client(f"127.0.0.1:{unused_tcp_port}", timeout=30)
    try:
        start = time.monotonic()
        with pytest.raises(aetcd.ConnectionFailedError, match="could be reached") as failed:
            await nobody.connect(timeout=0.5)
        assert time.monotonic() - start < 3.0
        assert failed.value.retryable
        with pytest.raises(aetcd.InvalidArgumentError):
            await nobody.connect(timeout=-1)
    finally:
        await nobody.close()


async def test_connect_timeout_bounds_the_first_connection_apart_from_calls(
    etcd_server: object, etcd_prefix: str, unused_tcp_port: int
) -> None:
    # Like Go's DialTimeout: the first use fails after connect_timeout, not after
    # the call's own (long) timeout; the client stays usable.
    nobody = aetcd.Client(f"127.0.0.1:{unused_tcp_port}", timeout=60, connect_timeout=0.3)
    try:
        with pytest.raises(aetcd.ConnectionFailedError, match=r"within 0\.3 s"):
            await nobody.get("x")
        assert not nobody.closed
        with pytest.raises(aetcd.ConnectionFailedError, match=r"within 0\.3 s"):
            await nobody.connect()  # connect() defaults to connect_timeout
    finally:
        await nobody.close()
    endpoint = etcd_server.endpoint  # type: ignore[attr-defined]
    async with aetcd.Client(endpoint, connect_timeout=5) as client:
        await client.put(etcd_prefix + "dial", "ok")
    # A watch as the first use dials too.
    async with aetcd.Client(endpoint, connect_timeout=5) as client:
        async with client.watch(etcd_prefix + "dial") as watch:
            await client.put(etcd_prefix + "dial", "again")
            async for event in watch:
                assert event.kv.value == b"again"
                break
