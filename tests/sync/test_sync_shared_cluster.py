"""The async client's cluster behaviour tests (``tests/integration/test_cluster.py``),
run on the blocking client: every ``aetcd.Client(...)`` they build is an
:class:`AsyncFacade` over an ``aetcd.sync.Client`` (see ``test_sync_shared.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from asyncfacade import share

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import test_cluster
from test_cluster import *  # noqa: F403

sync_aetcd = share(test_cluster)
