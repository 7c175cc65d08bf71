"""The blocking client mirrors the async one, and the new modules' fronts are honest."""

from __future__ import annotations

import inspect
import subprocess
import sys

import aetcd
from aetcd import sync
from aetcd.compat import etcd3
from aetcd.sync import recipes


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_every_async_method_has_a_blocking_twin() -> None:
    missing = _public(aetcd.Client) - _public(sync.Client)
    assert not missing, f"aetcd.sync.Client lacks {sorted(missing)}"


def test_blocking_signatures_are_the_async_ones() -> None:
    for name in sorted(_public(aetcd.Client)):
        a = getattr(aetcd.Client, name)
        if not callable(a) or isinstance(a, property):
            continue
        s = getattr(sync.Client, name)
        a_params = list(inspect.signature(a).parameters)
        s_params = list(inspect.signature(s).parameters)
        assert a_params == s_params, name


def test_blocking_signatures_return_what_a_call_returns() -> None:
    """``inspect.signature`` of a blocking method names its result, not a coroutine."""
    classes = [sync.Client, sync.Lease, sync.Watch]
    classes += [
        getattr(recipes, n) for n in recipes.__all__ if inspect.isclass(getattr(recipes, n))
    ]
    checked = 0
    for cls in classes:
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            returns = str(inspect.signature(member).return_annotation)
            assert "Coroutine" not in returns and "Awaitable" not in returns, (cls, name, returns)
            checked += 1
    assert checked > 50
    assert inspect.signature(sync.Client.put).return_annotation == "PutResult"
    assert inspect.signature(sync.Client.members).return_annotation == "list[Member]"


def test_async_recipes_have_blocking_twins() -> None:
    for name in aetcd.recipes.__all__:
        obj = getattr(aetcd.recipes, name)
        if not inspect.isclass(obj) and not inspect.iscoroutinefunction(obj):
            continue
        if name in {"ConfigChange", "ConfigChanges", "DiscoveryUpdates", "Instance",
                    "Isolation", "STMConflictError", "SubscriberOverflowError",
                    "TooManyClientsError"}:  # fmt: skip
            continue  # plain values, errors, or iterators returned as sync.Iterate
        assert hasattr(recipes, name), name


def test_all_names_exist() -> None:
    for module in (sync, recipes, etcd3):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_import_aetcd_does_not_import_sync_or_compat() -> None:
    code = "import sys, aetcd; print('aetcd.sync' in sys.modules, 'aetcd.compat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
