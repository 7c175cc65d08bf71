"""gRPC core's client I/O path, chosen before ``grpc`` is imported.

Since grpcio 1.80 or so, gRPC core sends client connections through its
*EventEngine* (the ``event_engine_client`` experiment, on by default). Under
``grpc.aio`` every completion then takes one more thread hand-off before it
reaches the event loop: on a 2-core box a unary round trip costs ~30 % more
wall time and CPU than on the older client path (``scripts/bench``; the
``floor-t`` rows of BENCHMARKS.md), and streams pay it per message.

gRPC reads ``GRPC_EXPERIMENTS`` once, when ``grpc`` is imported. This module,
imported first by ``aetcd/__init__.py``, turns the experiment off for this
process: it sets the variable around the import of ``grpc`` and restores it
afterwards, so child processes see the environment as it was. It leaves gRPC
alone when ``grpc`` was imported before ``aetcd`` (the choice is made by
then) or when ``GRPC_EXPERIMENTS`` already names ``event_engine_client``
(``GRPC_EXPERIMENTS=event_engine_client`` keeps gRPC's default).
"""

from __future__ import annotations

import logging
import os
import sys

EXPERIMENT = "event_engine_client"

#: Whether this process runs gRPC with :data:`EXPERIMENT` turned off by aetcd.
applied = False
#: Why not, when :data:`applied` is false.
reason = ""


def _apply() -> None:
    global applied, reason
    if "grpc" in sys.modules:
        reason = "grpc was imported before aetcd"
        return
    old = os.environ.get("GRPC_EXPERIMENTS")
    names = [n.strip().lstrip("-") for n in (old or "").split(",")]
    if EXPERIMENT in names:
        reason = f"GRPC_EXPERIMENTS names {EXPERIMENT}"
        return
    os.environ["GRPC_EXPERIMENTS"] = f"{old},-{EXPERIMENT}" if old else f"-{EXPERIMENT}"
    try:
        import grpc  # noqa: F401  (gRPC core reads its experiments now)
    finally:
        if old is None:
            del os.environ["GRPC_EXPERIMENTS"]
        else:
            os.environ["GRPC_EXPERIMENTS"] = old
    applied = True


_apply()
logging.getLogger("aetcd").debug(
    "gRPC %s: %s", EXPERIMENT, "off (aetcd)" if applied else f"gRPC's default ({reason})"
)
