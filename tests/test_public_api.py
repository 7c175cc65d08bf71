"""The public API, kept honest: every public module's ``__all__`` is its public
names, every public callable's signature is pinned, and no signature mentions a
protobuf message or a grpc object (channel, credentials, call, ``RpcError``).

A change to a pinned signature fails :func:`test_signatures_are_pinned` until the
table is regenerated on purpose::

    .venv/bin/python tests/test_public_api.py > tests/public_api_signatures.json
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import pkgutil
import re
import sys
import types as pytypes
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import aetcd
from aetcd import errors, ops, types

TABLE = Path(__file__).with_name("public_api_signatures.json")

# The front doors the docs name, then every public module below them that
# declares ``__all__`` (found by walking the package, so a new one is covered).
FRONT_DOORS = ("aetcd", "aetcd.recipes", "aetcd.testing", "aetcd.sync", "aetcd.compat.etcd3")


def _public_modules() -> list[str]:
    names = set(FRONT_DOORS)
    for info in pkgutil.walk_packages(aetcd.__path__, "aetcd."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if hasattr(importlib.import_module(info.name), "__all__"):
            names.add(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


def ruff_sort_key(name: str) -> tuple[int, str]:
    # RUF022's "isort-style" order: SCREAMING_CASE, then CamelCase, then the rest.
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    assert aetcd.__all__ == sorted(aetcd.__all__, key=ruff_sort_key)


def test_front_doors_are_walked() -> None:
    assert set(FRONT_DOORS) <= set(PUBLIC_MODULES)
    for name in ("aetcd.errors", "aetcd.ops", "aetcd.config", "aetcd.client"):
        assert name in PUBLIC_MODULES


def _defined_public_names(module: pytypes.ModuleType) -> set[str]:
    """Public names a module defines, or (a package) re-exports from aetcd."""
    is_package = hasattr(module, "__path__")
    out = set()
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj) or isinstance(obj, typing.TypeVar):
            continue
        home = getattr(obj, "__module__", None)
        if home == module.__name__ or (
            is_package and isinstance(home, str) and home.startswith("aetcd")
        ):
            out.add(name)
    return out


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), f"{name}.__all__ has duplicates"
    missing = sorted(n for n in exported if not hasattr(module, n))
    assert not missing, f"{name}.__all__ names undefined {missing}"
    unlisted = sorted(_defined_public_names(module) - exported)
    assert not unlisted, f"{name} defines public {unlisted} outside __all__"


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


# -- every public callable ------------------------------------------------------------


def _own(cls: type) -> bool:
    return cls.__module__.startswith("aetcd")


def _public_objects() -> Iterator[tuple[str, Any]]:
    """(qualified name, object) for every public name of every public module,
    each object once, named where it is defined."""
    seen: set[int] = set()
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            home = getattr(obj, "__module__", None) or modname
            qual = getattr(obj, "__qualname__", name)
            yield f"{home}.{qual}", obj


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public attributes of *cls* that aetcd defines (in it or an aetcd base)."""
    done: set[str] = set()
    for klass in cls.__mro__:
        if not _own(klass):
            continue
        for name, raw in vars(klass).items():
            if name in done or (name.startswith("_") and name != "__init__"):
                continue
            done.add(name)
            yield name, raw


def _signature(fn: Callable[..., Any]) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "<no signature>"


def _describe(raw: Any) -> str | None:
    if isinstance(raw, property):
        getter = _signature(raw.fget) if inspect.isfunction(raw.fget) else ""
        return f"property{getter}" + (" (settable)" if raw.fset else "")
    if isinstance(raw, classmethod):
        return f"classmethod{_signature(raw.__func__)}"
    if isinstance(raw, staticmethod):
        return f"staticmethod{_signature(raw.__func__)}"
    if isinstance(raw, enum.Enum):
        return f"member {raw.value!r}"
    if inspect.isclass(raw):
        return "class"
    if callable(raw):
        return _signature(raw)
    return None  # plain class attributes (constants, slots) are not pinned


def current_signatures() -> dict[str, str]:
    """The table: one entry per public function, class and class member."""
    table: dict[str, str] = {}
    for qual, obj in _public_objects():
        if inspect.isclass(obj):
            bases = ", ".join(b.__qualname__ for b in obj.__bases__)
            table[qual] = f"class({bases})"
            for name, raw in _members(obj):
                text = _describe(raw)
                if text is not None:
                    table[f"{qual}.{name}"] = text
        elif callable(obj):
            table[qual] = _signature(obj)
        else:
            table[qual] = f"value: {type(obj).__name__}"
    return dict(sorted(table.items()))


def test_signatures_have_no_addresses() -> None:
    # A default like <object object at 0x7f...> would make the table flaky.
    for qual, text in current_signatures().items():
        assert " at 0x" not in text, qual


def test_signatures_are_pinned() -> None:
    pinned = json.loads(TABLE.read_text())
    now = current_signatures()
    added = sorted(set(now) - set(pinned))
    removed = sorted(set(pinned) - set(now))
    changed = sorted(q for q in set(now) & set(pinned) if now[q] != pinned[q])
    assert not (added or removed or changed), (
        "public API changed; if on purpose, regenerate "
        f"{TABLE.name} (see this module's docstring)\n"
        f"added: {added}\nremoved: {removed}\n"
        + "\n".join(f"changed {q}: {pinned[q]} -> {now[q]}" for q in changed)
    )


# -- no protobuf or grpc in a public signature ----------------------------------------

_ALLOWED_GRPC = (grpc.StatusCode,)  # an error's status code is public on purpose
_LEAK_TEXT = re.compile(r"\b(\w+_pb2\w*|google\.protobuf|grpc)\.(?!StatusCode\b)\w+")


def _leaks(hint: Any) -> bool:
    """Whether a resolved type hint mentions a protobuf or grpc class."""
    if isinstance(hint, type):
        home = hint.__module__
        if hint not in _ALLOWED_GRPC and (
            home.startswith(("aetcd._pb", "google.protobuf", "grpc"))
        ):
            return True
    return any(_leaks(arg) for arg in typing.get_args(hint))


def _functions(raw: Any) -> list[Callable[..., Any]]:
    if isinstance(raw, property):
        return [f for f in (raw.fget, raw.fset) if f is not None]
    if isinstance(raw, classmethod | staticmethod):
        return [raw.__func__]
    if inspect.isfunction(raw):
        return [raw]
    return []


def _callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    for qual, obj in _public_objects():
        if inspect.isclass(obj):
            for name, raw in _members(obj):
                for fn in _functions(raw):
                    yield f"{qual}.{name}", fn
        elif inspect.isfunction(obj):
            yield qual, obj


def signature_leaks() -> list[str]:
    found = []
    for qual, fn in _callables():
        annotations = getattr(fn, "__annotations__", {})
        for param, text in annotations.items():
            if isinstance(text, str) and _LEAK_TEXT.search(text):
                found.append(f"{qual} {param}: {text}")
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # a TYPE_CHECKING-only name: the text check above covers it
            continue
        found += [f"{qual} {p}: {h}" for p, h in hints.items() if _leaks(h)]
    return found


def test_no_protobuf_or_grpc_in_public_signatures() -> None:
    assert signature_leaks() == []


def test_the_leak_check_sees_a_public_from_pb(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check above must fail if a protobuf conversion becomes public again.
    def from_pb(cls: type, pb: kv_pb2.KeyValue) -> aetcd.KeyValue:
        raise NotImplementedError

    monkeypatch.setattr(aetcd.KeyValue, "from_pb", classmethod(from_pb), raising=False)
    assert any("KeyValue.from_pb" in leak for leak in signature_leaks())


if typing.TYPE_CHECKING:
    from aetcd._pb import kv_pb2


if __name__ == "__main__":
    json.dump(current_signatures(), sys.stdout, indent=1)
    sys.stdout.write("\n")
