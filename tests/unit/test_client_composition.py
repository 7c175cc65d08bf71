"""Client is composed of its services; recipes are loaded only when used."""

from __future__ import annotations

import inspect
import subprocess
import sys

import aetcd
from aetcd.recipes.election import DEFAULT_ELECTION_TTL
from aetcd.recipes.lock import DEFAULT_LOCK_TTL
from aetcd.recipes.session import DEFAULT_SESSION_TTL


def test_import_aetcd_loads_no_recipe() -> None:
    code = "import sys, aetcd; print(sorted(m for m in sys.modules if 'recipes' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_client_has_no_base_classes() -> None:
    assert aetcd.Client.__mro__ == (aetcd.Client, object)


def test_delegators_return_the_service_coroutine() -> None:
    """A plain function returning the service's coroutine: no frame of its own."""
    assert not inspect.iscoroutinefunction(aetcd.Client.put)
    client = aetcd.Client()
    call = client.put(b"k", b"v")
    assert inspect.iscoroutine(call) and call.cr_code.co_qualname == "KV.put"
    call.close()


def test_shortcut_defaults_are_the_recipes_defaults() -> None:
    sig = inspect.signature
    assert sig(aetcd.Client.lock).parameters["ttl"].default == DEFAULT_LOCK_TTL
    assert sig(aetcd.Client.election).parameters["ttl"].default == DEFAULT_ELECTION_TTL
    assert sig(aetcd.Client.session).parameters["ttl"].default == DEFAULT_SESSION_TTL


def test_delegators_keep_the_service_docstrings() -> None:
    assert aetcd.Client.put.__doc__ and "OutcomeUnknownError" in aetcd.Client.put.__doc__
    assert aetcd.Client.watch.__doc__ and "start_revision" in aetcd.Client.watch.__doc__
