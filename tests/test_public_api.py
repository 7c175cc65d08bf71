"""The front door: ``aetcd.__all__`` is sorted, complete, and every name exists."""

from __future__ import annotations

import inspect

import aetcd
from aetcd import errors, ops, types


def ruff_sort_key(name: str) -> tuple[int, str]:
    # RUF022's "isort-style" order: SCREAMING_CASE, then CamelCase, then the rest.
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    assert aetcd.__all__ == sorted(aetcd.__all__, key=ruff_sort_key)


def test_all_names_exist() -> None:
    for name in aetcd.__all__:
        assert hasattr(aetcd, name), name


def test_public_names_of_submodules_are_exported() -> None:
    exported = set(aetcd.__all__)
    for module in (errors, ops, types):
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isclass(obj):
                continue
            if obj.__module__ != module.__name__:
                continue
            if name in {"HasLeaseId", "CompareOperand"}:
                continue  # helper types reached through other names
            assert name in exported, f"{module.__name__}.{name} is not in aetcd.__all__"


def test_no_protobuf_in_public_signatures() -> None:
    for name in ("get", "put", "delete", "txn", "compact"):
        sig = inspect.signature(getattr(aetcd.Client, name))
        assert "_pb2" not in str(sig), name
