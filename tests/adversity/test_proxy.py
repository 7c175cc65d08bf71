"""The fault proxy itself, against a loopback echo server (no etcd needed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

import pytest

from aetcd.testing import FaultProxy, ProxyError


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def _roundtrip(endpoint: str, payload: bytes = b"ping", timeout: float = 2.0) -> float:
    host, port = endpoint.rsplit(":", 1)
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(timeout):
            got = await reader.readexactly(len(payload))
        assert got == payload
        return time.monotonic() - start
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def test_upstreams_must_be_loopback() -> None:
    for bad in ("10.0.0.1:2379", "192.168.1.2:2379", "example.com:2379", "8.8.8.8:53", "nohost"):
        with pytest.raises(ValueError):
            FaultProxy([bad])


async def test_verbs(echo: str) -> None:
    async with FaultProxy([echo, echo]) as proxy:
        a, b = proxy.endpoints
        assert all(e.startswith("127.0.0.1:") for e in proxy.endpoints)
        assert await _roundtrip(a) < 1.0

        await proxy.delay(0, 0.3, 0.05)
        assert 0.5 <= await _roundtrip(a) < 2.0  # 0.3 s each way
        assert await _roundtrip(b) < 0.3  # the other member is untouched
        await proxy.passthrough(0)

        await proxy.blackhole(0)
        with pytest.raises(TimeoutError):
            await _roundtrip(a, timeout=0.5)
        await proxy.passthrough()

        host, port = a.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        assert await proxy.reset(0) >= 1  # ours (and maybe one still closing)
        with pytest.raises(ConnectionResetError):
            writer.write(b"x" * 65536)
            await writer.drain()
            async with asyncio.timeout(2):
                if not await reader.read(1):
                    raise ConnectionResetError("closed")
        writer.close()

        await proxy.refuse(1)
        with pytest.raises(ConnectionRefusedError):
            await _roundtrip(b)
        await proxy.passthrough(1)
        assert await _roundtrip(b) < 1.0

        stats = await proxy.stats()
        assert [s["index"] for s in stats] == [0, 1]
        assert stats[0]["resets"] >= 1 and stats[0]["bytes_up"] > 0
        with pytest.raises(IndexError):
            await proxy.blackhole(2)
        with pytest.raises(ProxyError):
            await proxy.delay(0, base=120)
    assert not proxy.running


async def test_dies_with_its_parent(echo: str) -> None:
    proxy = FaultProxy([echo])
    await proxy.start()
    try:
        pid = proxy.pid
        assert pid is not None
        assert proxy._proc is not None and proxy._proc.stdin is not None
        proxy._proc.stdin.close()  # what the parent's death does to the pipe
        for _ in range(100):
            if not proxy._proc.running:
                break
            await asyncio.sleep(0.05)
        assert not proxy._proc.running, "the proxy outlived its parent's pipe"
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        await proxy.aclose()
