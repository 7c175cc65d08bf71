"""The package's shape: no import cycle at module level, no module above 650 lines,
and only the wire layer (``aetcd/_wire/``) importing the generated ``aetcd._pb``.

The checks read the source (an AST scan), so they need no etcd and import nothing.
Imports inside functions and under ``if TYPE_CHECKING:`` are lazy and do not count;
the generated ``aetcd/_pb/`` is left out.

``KNOWN_OFFENDERS`` lists what still breaks a rule while other work is under way. It
may only shrink: a listed module that no longer offends fails the test too, so the
entry is removed in the change that fixes it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "aetcd"
MAX_LINES = 650

# Allowed for now, each to be fixed by the step of issue 14 that owns the module.
KNOWN_OFFENDERS: dict[str, set[str]] = {
    # Modules in an import cycle at module level: none.
    "cycle": set(),
    # Modules above MAX_LINES: none.
    "size": set(),
}


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module under aetcd/ except the generated _pb/."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "_pb" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _origin(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` in module *name* (file *path*) reads from."""
    if not node.level:
        return node.module or ""
    base = name.split(".")
    base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _top_level_imports(
    tree: ast.Module, *, typing: bool = False
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported (not lazy; with ``typing``,
    those under ``if TYPE_CHECKING:`` too)."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if typing or name != "TYPE_CHECKING":
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)


def _import_graph(modules: dict[str, Path], *, typing: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of aetcd it imports at module level (see _top_level_imports)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in _top_level_imports(tree, typing=typing):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            origin = _origin(name, path, node)
            for alias in node.names:
                # ``from pkg import sub`` loads the submodule pkg.sub; any other name
                # is read from pkg's namespace, so pkg must have run by then.
                sub = f"{origin}.{alias.name}"
                targets.add(sub if sub in modules else origin)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative; components of more than one module only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _a_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One import cycle through the component, as a path that ends where it starts."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth first: the shortest way back to start
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return sorted(component)  # unreachable for a strongly connected component


def test_the_scan_sees_the_package() -> None:
    modules = _modules()
    graph = _import_graph(modules)
    assert "aetcd.client" in modules and "aetcd.testing.server" in modules
    assert not any(name.startswith("aetcd._pb") for name in modules)
    # A relative import, a package import and a TYPE_CHECKING-only import, resolved.
    assert "aetcd._cli.common" in graph["aetcd._cli.output"]
    assert "aetcd.testing.cluster" in graph["aetcd.testing"]
    assert "aetcd._cli.context" not in graph["aetcd._cli.kv"]


def test_no_import_cycle_at_module_level() -> None:
    graph = _import_graph(_modules())
    cycles = _strongly_connected(graph)
    in_cycles = set().union(*cycles)
    allowed = KNOWN_OFFENDERS["cycle"]
    new = [
        " -> ".join(_a_cycle(graph, component)) for component in cycles if not component <= allowed
    ]
    assert not new, "import cycles (import lazily, or move the shared type to a leaf):\n" + (
        "\n".join(new)
    )
    fixed = sorted(allowed - in_cycles)
    assert not fixed, f"no longer in a cycle: remove from KNOWN_OFFENDERS['cycle']: {fixed}"


def test_cli_and_testing_have_no_cycle_even_for_the_type_checker() -> None:
    """The CLI's command modules and the test harness's modules import their shared
    types from leaves (``_cli/context.py``, ``testing/_process.py``...), not from the
    module that wires them together, not even under ``TYPE_CHECKING``."""
    modules = _modules()
    graph = _import_graph(modules, typing=True)
    mine = {n for n in modules if n.startswith(("aetcd._cli", "aetcd.testing"))}
    cycles = [
        " -> ".join(_a_cycle(graph, component))
        for component in _strongly_connected(graph)
        if component & mine
    ]
    assert not cycles, "import cycles (move the shared type to a leaf):\n" + "\n".join(cycles)


def test_no_module_above_650_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    large = {name for name, lines in sizes.items() if lines > MAX_LINES}
    allowed = KNOWN_OFFENDERS["size"]
    new = sorted(f"{name} ({sizes[name]} lines)" for name in large - allowed)
    assert not new, f"modules above {MAX_LINES} lines (split them by concern): {new}"
    fixed = sorted(allowed - large)
    assert not fixed, f"no longer above {MAX_LINES} lines: remove from KNOWN_OFFENDERS: {fixed}"


def _imported(name: str, path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in module *name*, lazy ones included: for
    ``from a import b`` both ``a`` and ``a.b`` (b may be a submodule)."""
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            origin = _origin(name, path, node)
            yield node.lineno, origin
            for alias in node.names:
                yield node.lineno, f"{origin}.{alias.name}"


def _is_pb(module: str) -> bool:
    return module == "aetcd._pb" or module.startswith("aetcd._pb.")


def test_the_import_scan_sees_every_spelling() -> None:
    """Absolute, relative from a module and from a package, and lazy (in a function)."""
    source = (
        "from ._pb import rpc_pb2\n"
        "from . import _pb\n"
        "def f():\n"
        "    import aetcd._pb.kv_pb2\n"
        "    from .._pb.auth_pb2 import Permission\n"
    )
    in_module = {m for _, m in _imported("aetcd.kv", PACKAGE / "kv.py", source)}
    assert {"aetcd._pb.rpc_pb2", "aetcd._pb", "aetcd._pb.kv_pb2"} <= in_module
    in_package = {m for _, m in _imported("aetcd.sync", PACKAGE / "sync" / "__init__.py", source)}
    assert {"aetcd.sync._pb", "aetcd._pb.auth_pb2"} <= in_package
    assert _is_pb("aetcd._pb.rpc_pb2") and not _is_pb("aetcd._pbx")
    modules = _modules()
    assert any(
        _is_pb(m) for _, m in _imported("aetcd._wire.messages", modules["aetcd._wire.messages"])
    )


def test_only_the_wire_layer_imports_the_generated_messages() -> None:
    """Protobuf stays below ``aetcd._wire``: a service imports its request classes
    from ``aetcd._wire.messages``, never from ``aetcd._pb`` (not even lazily)."""
    found = sorted(
        f"{name}:{line} imports {module}"
        for name, path in _modules().items()
        if not name.startswith("aetcd._wire")
        for line, module in _imported(name, path)
        if _is_pb(module)
    )
    assert not found, "import from aetcd._wire.messages instead:\n" + "\n".join(found)
