"""python-etcd3 0.12 processes and ``aetcd.compat.etcd3`` exclude each other on one lock.

The python-etcd3 side runs in a separate process with the pure-Python protobuf
(``etcd3_peer.py``). If python-etcd3 is not installed (it is a dev dependency),
the test skips with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aetcd.compat import etcd3

PEER = Path(__file__).with_name("etcd3_peer.py")
ENV = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}


def _have_python_etcd3() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import etcd3"], env=ENV, capture_output=True, check=False
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _have_python_etcd3(),
    reason="python-etcd3 0.12.0 (with six and tenacity) is not installed: "
    "the lock interop test cannot run; install the dev dependencies",
)


class Peer:
    def __init__(self, endpoint: str, name: str) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), host, port, name],
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.ask(None) == "ready"

    def ask(self, command: str | None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def peer(etcd_server: Any, etcd_prefix: str) -> Iterator[Peer]:
    p = Peer(etcd_server.endpoint, etcd_prefix + "lock")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def compat(etcd_server: Any) -> Iterator[etcd3.Etcd3Client]:
    host, port = etcd_server.endpoint.rsplit(":", 1)
    with etcd3.client(host=host, port=int(port)) as client:
        yield client


def test_compat_holder_excludes_python_etcd3(
    compat: etcd3.Etcd3Client, peer: Peer, etcd_prefix: str
) -> None:
    lock = compat.lock(etcd_prefix + "lock", ttl=30)
    assert lock.acquire(timeout=5)
    assert lock.is_acquired()
    value, meta = compat.get("/locks/" + etcd_prefix + "lock")
    assert value == lock.uuid and meta is not None and meta.lease_id == lock.lease.id  # type: ignore[union-attr]
    assert peer.ask("acquire 1") == "False"
    assert lock.release()
    assert peer.ask("acquire 5") == "True"
    assert not lock.is_acquired()
    assert peer.ask("release") == "True"


def test_python_etcd3_holder_excludes_compat(
    compat: etcd3.Etcd3Client, peer: Peer, etcd_prefix: str
) -> None:
    assert peer.ask("acquire 5") == "True"
    key = "/locks/" + etcd_prefix + "lock"
    lock = compat.lock(etcd_prefix + "lock", ttl=30)
    assert lock.acquire(timeout=0.5) is False
    value, meta = compat.get(key)  # the python-etcd3 holder's key
    assert value is not None and value != lock.uuid and meta is not None
    held_since = meta.create_revision
    # A waiting compat lock gets it once the python-etcd3 holder releases.
    release_started: list[float] = []
    replies: list[str] = []

    def release_later() -> None:
        time.sleep(0.5)
        release_started.append(time.monotonic())
        replies.append(peer.ask("release"))

    t = threading.Thread(target=release_later)
    t.start()
    assert lock.acquire(timeout=10)
    acquired_at = time.monotonic()
    t.join()
    assert replies == ["True"]
    # Not before the holder let go: acquired after the release began, with a key
    # created after the holder's (one key: the holder's was deleted in between).
    assert release_started and acquired_at >= release_started[0]
    value, meta = compat.get(key)
    assert value == lock.uuid and meta is not None and meta.create_revision > held_since
    assert peer.ask("is_acquired") == "False"
    assert peer.ask("acquire 0.5") == "False"
    lock.release()
