"""aetcd's choice of gRPC core's client I/O path (aetcd/_grpc_tuning.py).

Each case runs in a fresh interpreter: gRPC fixes its experiments when it is
imported, once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

import aetcd
from aetcd import _grpc_tuning

REPORT = """
import json, os, sys
{before}
import aetcd
from aetcd import _grpc_tuning as t
print(json.dumps({{"applied": t.applied, "reason": t.reason,
                  "env": os.environ.get("GRPC_EXPERIMENTS")}}))
"""


def run(before: str = "", env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    base = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    proc = subprocess.run(
        [sys.executable, "-c", REPORT.format(before=before)],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_applied_on_import_and_environment_restored() -> None:
    report, stderr = run()
    assert report == {"applied": True, "reason": "", "env": None}
    # The installed gRPC knows the experiment (an unknown name is logged, and ignored).
    assert "Unknown experiment" not in stderr


def test_other_experiments_of_the_user_are_kept() -> None:
    report, stderr = run(env={"GRPC_EXPERIMENTS": "-event_engine_listener"})
    assert report["applied"] is True and report["env"] == "-event_engine_listener"
    assert "Unknown experiment" not in stderr


@pytest.mark.parametrize("value", ["event_engine_client", "-event_engine_client"])
def test_the_users_choice_wins(value: str) -> None:
    report, _ = run(env={"GRPC_EXPERIMENTS": value})
    assert report["applied"] is False and report["env"] == value
    assert "GRPC_EXPERIMENTS names" in report["reason"]


def test_too_late_when_grpc_came_first() -> None:
    report, _ = run(before="import grpc")
    assert report["applied"] is False and "imported before aetcd" in report["reason"]


def test_this_suite_runs_with_the_setting() -> None:
    # So the behaviour tests exercise the path users get by default.
    assert _grpc_tuning.applied, _grpc_tuning.reason


# The other path: grpc imported first, gRPC's own default. A round of KV,
# watch and lease calls must work the same.
DEFAULT_PATH = """
import asyncio, sys
import grpc
import aetcd
from aetcd import _grpc_tuning

async def main(endpoint, prefix):
    assert not _grpc_tuning.applied
    async with aetcd.Client(endpoint) as client:
        async with client.watch(prefix, prefix=True) as watch:
            async with client.lease(10) as lease:
                await client.put(prefix + "a", "1", lease=lease)
            await client.put(prefix + "b", "2")
            seen = []
            async for event in watch:
                seen.append((event.type.name, event.kv.key.decode()))
                if len(seen) == 3:
                    break
        got = await client.get(prefix + "b")
    print(seen, got.kvs[0].value.decode())

asyncio.run(main(*sys.argv[1:3]))
"""


def test_grpc_default_path_works(etcd_server: Any, etcd_prefix: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DEFAULT_PATH, etcd_server.endpoint, etcd_prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    a, b = etcd_prefix + "a", etcd_prefix + "b"
    assert proc.stdout.strip() == f"[('PUT', '{a}'), ('DELETE', '{a}'), ('PUT', '{b}')] 2"
    assert aetcd.Client  # the module under test is importable here too
