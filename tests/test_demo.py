"""The demo tour (what `scripts/demo` runs) completes against a real etcd."""

from __future__ import annotations

from typing import Any

import pytest

from aetcd._cli import demo


async def test_demo_tour(etcd_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert await demo.main(etcd_server.endpoint) == 0
    out = capsys.readouterr().out
    assert "exactly one winner: True" in out
    assert "heartbeat key gone: True" in out
    assert "the new leader is bob" in out
    assert "the killed instance vanished" in out
    assert "(in order, no duplicate: True)" in out
    assert "every coalesced put is stored: True" in out
    assert out.rstrip().endswith("tour complete")
