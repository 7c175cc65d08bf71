"""Dependencies point one way: machinery beneath its handle, recipes and CLI on public API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import aetcd

PACKAGE = Path(aetcd.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_lessor_imports_nothing_from_lease() -> None:
    modules = imported_modules(PACKAGE / "_lessor.py")
    assert not {m for m in modules if m in {".lease", "aetcd.lease"}}


def test_the_watch_stream_imports_nothing_from_watch() -> None:
    modules = imported_modules(PACKAGE / "_watch_stream.py")
    assert not {m for m in modules if m in {".watch", "aetcd.watch"}}


def test_the_stream_hooks_are_not_public_methods_of_watch() -> None:
    hooks = {"create_request", "on_created", "on_events", "on_progress", "fail"}
    hooks |= {"on_broadcast_progress"}
    assert not hooks & set(dir(aetcd.Watch))


def test_recipes_and_the_cli_use_no_private_field_of_a_lease() -> None:
    private = re.compile(r"\.(_mark_lost|_listener|_gone|_keeper|_kept|_renewed)\b")
    files = [*sorted((PACKAGE / "recipes").glob("*.py")), PACKAGE / "_cli" / "lease.py"]
    offenders = [
        f"{path.name}:{n}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []


def _transport_private_reads(path: Path) -> list[str]:
    """``<transport>._name`` in *path*, where the transport is spelt ``t``,
    ``transport`` or ``..._t`` (how every module names it)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__"):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id in {"t", "transport"}) or (
            isinstance(owner, ast.Attribute) and owner.attr in {"_t", "transport"}
        ):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    return found


def test_only_the_transport_touches_its_private_state() -> None:
    """The token, the member chooser, auto-sync and the services use the
    transport's explicit interface (``check_usable()``, ``token``, ``new_member()``,
    ``_members.Host``...), never its private attributes."""
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if "_pb" not in p.parts]
    offenders = [
        hit for p in files if p.name != "_channel.py" for hit in _transport_private_reads(p)
    ]
    assert offenders == []
