"""Sphinx configuration for the aetcd documentation.

Built by ``scripts/docs`` with warnings as errors (``-W``) and nitpicky
cross-references (``-n``): a broken reference or bad reST fails the build.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aetcd  # noqa: E402

project = "aetcd"
author = "the aetcd authors"
copyright = "the aetcd authors"
release = aetcd.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc -----------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
add_module_names = False

# -- references --------------------------------------------------------------------
# Every cross-reference must resolve (-n), except to code outside this project:
# there is no network at build time, so no intersphinx inventories.
nitpicky = True
nitpick_ignore_regex = [
    # The standard library and third-party packages.
    (
        r"py:.*",
        r"(asyncio|collections|concurrent|contextlib|dataclasses|datetime|enum|json|logging"
        r"|os|pathlib|re|signal|socket|ssl|subprocess|threading|types|typing|weakref)\..*",
    ),
    (r"py:.*", r"(grpc|pytest|_pytest)(\..*)?"),
    # Type variables of generic helpers.
    (r"py:class", r"T|_T"),
    # Private names (a leading underscore) are not documented; some show in signatures.
    (r"py:.*", r"aetcd(\.\w+)*\._\w+(\.\w+)*"),
]

# -- HTML --------------------------------------------------------------------------
html_theme = "furo"
html_title = f"aetcd {release}"
html_static_path: list[str] = []
pygments_style = "friendly"


# -- hooks -------------------------------------------------------------------------

# Client delegates to one object per service: ``LeaseAPI.grant`` is ``Client.grant``.
_FACADES = ("KV", "LeaseAPI", "WatchAPI", "ClusterAPI", "MaintenanceAPI", "AuthAPI")
_PACKAGES = (
    "aetcd",
    "aetcd.recipes",
    "aetcd.testing",
    "aetcd.testing.server",
    "aetcd.config",
    "aetcd.lease",
    "aetcd.ops",
)


def _candidates(target: str) -> list[str]:
    """Public spellings of *target*: the re-export of a name defined in a submodule
    (``aetcd.errors.LeaseLostError`` is documented as ``aetcd.LeaseLostError``),
    a bare name from a docstring, or a facade method (``LeaseAPI.grant``)."""
    parts = target.split(".")
    out: list[str] = []
    if parts[-1] == "RecipeClient":  # what recipes need of a client: a Client
        out.append("aetcd.Client")
    if parts[0] in _FACADES and len(parts) == 2:
        out.append(f"aetcd.Client.{parts[1]}")
    if parts[0] == "aetcd" or len(parts) <= 2:
        for i in range(len(parts)):
            rest = ".".join(parts[i:])
            for pkg in _PACKAGES:
                out.append(f"{pkg}.{rest}")
            out.append(f"aetcd.Client.{rest}")
    return [c for c in out if c != target]


def _resolve_alias(app, env, node, contnode):  # type: ignore[no-untyped-def]
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    for candidate in _candidates(target):
        if candidate in domain.objects:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], candidate, node, contnode
            )
    return None


class PublicNames(Directive):
    """``.. public-names:: aetcd.errors`` documents every name in a module's ``__all__``.

    Each name is documented where users import it from: under the first of
    ``aetcd``, the module itself, that exports the same object. ``:exclude:``
    lists names to leave out (documented elsewhere); ``:members:`` adds the
    members of classes. New public names thus appear without editing the page.
    """

    required_arguments = 1
    option_spec: ClassVar = {"exclude": directives.unchanged, "members": directives.flag}

    def run(self):  # type: ignore[no-untyped-def]
        module = importlib.import_module(self.arguments[0])
        exclude = {n.strip() for n in self.options.get("exclude", "").split(",") if n.strip()}
        lines: list[str] = []
        for name in module.__all__:
            if name in exclude:
                continue
            obj = getattr(module, name)
            home = "aetcd" if getattr(aetcd, name, None) is obj else module.__name__
            if isinstance(obj, type) and issubclass(obj, BaseException):
                lines += [f".. autoexception:: {home}.{name}", "   :show-inheritance:"]
            elif isinstance(obj, type):
                lines.append(f".. autoclass:: {home}.{name}")
                if "members" in self.options:
                    lines.append("   :members:")
            elif callable(obj):
                lines.append(f".. autofunction:: {home}.{name}")
            else:
                lines.append(f".. autodata:: {home}.{name}")
            lines.append("")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=self.arguments[0]), node)
        return node.children


_FACADE_TITLES = {
    "KV": "Keys, values and transactions",
    "LeaseAPI": "Leases",
    "WatchAPI": "Watches",
    "ClusterAPI": "Cluster membership",
    "MaintenanceAPI": "Maintenance",
    "AuthAPI": "Authentication, users and roles",
}
_LIFECYCLE = frozenset({"connect", "close", "closed", "endpoints", "settings"})


def _client_sections() -> list[tuple[str, list[str]]]:
    """Client's public methods grouped by the service they delegate to, in
    Client's source order; the rest (recipe shortcuts) last, lifecycle left out."""
    services = [
        getattr(importlib.import_module(f"aetcd.{module}"), name)
        for module, name in (
            ("kv", "KV"),
            ("lease", "LeaseAPI"),
            ("watch", "WatchAPI"),
            ("cluster", "ClusterAPI"),
            ("maintenance", "MaintenanceAPI"),
            ("auth", "AuthAPI"),
        )
    ]
    sections: dict[str, list[str]] = {_FACADE_TITLES[s.__name__]: [] for s in services}
    shortcuts: list[str] = []
    for name, value in vars(aetcd.Client).items():
        if name.startswith("_") or name in _LIFECYCLE or not callable(value):
            continue
        home = next((s for s in services if name in vars(s)), None)
        (shortcuts if home is None else sections[_FACADE_TITLES[home.__name__]]).append(name)
    return [*sections.items(), ("Recipe shortcuts", shortcuts)]


def _skip_client_member(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    # ``autoclass:: Client`` documents the lifecycle; .. client-methods:: the rest.
    if what == "class" and getattr(obj, "__qualname__", "").startswith("Client."):
        if name not in _LIFECYCLE and not name.startswith("_"):
            return True
    return None


class ClientMethods(Directive):
    """``.. client-methods::`` documents the methods of :class:`aetcd.Client`,
    one section per service it delegates to (KV, leases, watches...), in source order.

    Read from the class itself, so a method added to Client shows up here.
    """

    def run(self):  # type: ignore[no-untyped-def]
        lines: list[str] = []
        for title, names in _client_sections():
            if not names:
                continue
            lines += [title, "-" * len(title), ""]
            for name in names:
                lines += [f".. automethod:: aetcd.Client.{name}", ""]
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="aetcd.Client"), node)
        return node.children


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-skip-member", _skip_client_member)
    app.connect("missing-reference", _resolve_alias)
    app.add_directive("public-names", PublicNames)
    app.add_directive("client-methods", ClientMethods)
