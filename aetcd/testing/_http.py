"""The launcher's probes of etcd's HTTP endpoints (``/health``, ``/metrics``, the JSON gateway).

They use the standard library's :mod:`http.client` in a helper thread, so nothing here
needs the aetcd client (the code under test) or a dependency outside the standard
library, and a launcher stays usable from any event loop. Requests only ever go to
:data:`~aetcd.testing._host.HOST`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from collections.abc import Mapping
from typing import Any

from ._host import HOST


def _exchange(
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    timeout: float,
    tls: ssl.SSLContext | None,
) -> tuple[int, bytes]:
    conn: http.client.HTTPConnection
    if tls is None:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=tls)
    try:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:  # a malformed reply: report it as the I/O error it is
        raise ConnectionError(f"bad HTTP response from {HOST}:{port}{path}: {exc!r}") from exc
    finally:
        conn.close()


async def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    timeout: float = 2.0,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """Send one request to ``127.0.0.1:port`` and return (status, body); ``tls`` speaks HTTPS.

    Raises :class:`TimeoutError` after ``timeout``; the helper thread's socket gives up
    within the same time, so no connection outlives the call for long.
    """
    async with asyncio.timeout(timeout):
        return await asyncio.to_thread(_exchange, port, method, path, body, timeout, tls)


async def post_json(
    port: int,
    path: str,
    payload: Mapping[str, object],
    *,
    timeout: float,
    tls: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    """POST ``payload`` as JSON and return the decoded object (not 200: ConnectionError)."""
    status, body = await request(
        port, "POST", path, json.dumps(payload).encode(), timeout=timeout, tls=tls
    )
    if status != 200:
        raise ConnectionError(f"POST {path} on port {port}: HTTP {status}: {body[:300]!r}")
    decoded = json.loads(body)
    if not isinstance(decoded, dict):
        raise ConnectionError(f"POST {path} on port {port}: unexpected JSON {decoded!r}")
    return decoded


async def is_healthy(
    port: int, timeout: float, path: str = "/health", tls: ssl.SSLContext | None = None
) -> bool:
    """True if ``GET path`` answers ``{"health": "true"}``; any failure means False."""
    try:
        status, body = await request(port, "GET", path, timeout=timeout, tls=tls)
        return status == 200 and json.loads(body).get("health") == "true"
    except (OSError, TimeoutError, ValueError, AttributeError):
        return False
