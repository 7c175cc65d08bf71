"""``ClientConfig`` checks its settings however it is built, not only in ``build()``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from aetcd import TLS, InvalidArgumentError, Secret
from aetcd.config import MAX_SEND_BYTES, ClientConfig, Endpoint

BASE = ClientConfig.build("127.0.0.1:2379")
PLAIN = Endpoint.parse("127.0.0.1:2379")
SECURE = Endpoint.parse("https://127.0.0.1:2380")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"endpoints": ()}, InvalidArgumentError),
        ({"endpoints": ("127.0.0.1:2379",)}, TypeError),
        ({"endpoints": [PLAIN]}, TypeError),
        ({"endpoints": (PLAIN, SECURE)}, InvalidArgumentError),
        ({"tls": "ca.pem"}, TypeError),
        ({"username": "root"}, InvalidArgumentError),
        ({"password": Secret("pw")}, InvalidArgumentError),
        ({"username": "", "password": Secret("pw")}, InvalidArgumentError),
        ({"username": "root", "password": "pw"}, TypeError),
        ({"timeout": -1.0}, InvalidArgumentError),
        ({"timeout": "5"}, TypeError),
        ({"connect_timeout": 0}, InvalidArgumentError),
        ({"max_txn_ops": 0}, InvalidArgumentError),
        ({"max_txn_ops": True}, InvalidArgumentError),
        ({"max_request_bytes": MAX_SEND_BYTES + 1}, InvalidArgumentError),
        ({"keepalive_time": 1.0}, InvalidArgumentError),
        ({"keepalive_time": math.inf}, InvalidArgumentError),
        ({"keepalive_timeout": math.nan}, InvalidArgumentError),
        ({"auto_sync_interval": 0.01}, InvalidArgumentError),
        ({"namespace": "app/"}, TypeError),
        ({"require_leader": 1}, TypeError),
    ],
)
def test_direct_construction_is_checked(changes: dict[str, Any], error: type[Exception]) -> None:
    fields = {f.name: getattr(BASE, f.name) for f in dataclasses.fields(ClientConfig)}
    with pytest.raises(error):
        ClientConfig(**{**fields, **changes})
    with pytest.raises(error):
        dataclasses.replace(BASE, **changes)


def test_direct_construction_normalises_like_build() -> None:
    config = ClientConfig(endpoints=(SECURE,), timeout=math.inf, keepalive_time=30)
    assert config.tls == TLS()  # https without settings: the system's CAs
    assert config.timeout is None  # no deadline
    assert config.keepalive_time == 30.0 and type(config.keepalive_time) is float
    assert dataclasses.replace(config) == config
    assert dataclasses.replace(BASE) == BASE == ClientConfig.build("127.0.0.1:2379")
