"""Each layer of enrichment_app/ imports only downward, and only the edge imports Reflex.

The imports of every module are read with ``ast`` (function-level imports included), so a
layer that reaches up, even lazily, fails here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "enrichment_app"

REFLEX_LAYERS = {"state", "components", "pages", "enrichment_app"}
"""Reflex stays at the edge: the page state, the components, the pages and the app module."""

_UI = {"state", "components", "pages", "enrichment_app"}
_FOUNDATION = {"domain", "errors", "settings", "selection", "routes", "views", "clipboard"}
_TOOLS = {"egress", "keyring", "redact", "edge", "rate_limits"}
"""Small leaf modules the layers above share: the egress guard, secret sealing, scrubbing, the
backend's front door (Host, Origin, upload size) and the rate limiter."""
_ALL = {
    *_UI,
    *_FOUNDATION,
    *_TOOLS,
    "api",
    "bus",
    "db",
    "enrichers",
    "live",
    "runner",
    "runtime",
    "services",
    "trigger",
    "oidc",
    "worker",
    "keys",
}

MAY_NOT_IMPORT: dict[str, set[str]] = {
    # The foundation imports nothing of the app but itself (settings may raise errors).
    **{layer: _ALL - {layer, "errors"} for layer in _FOUNDATION | _TOOLS},
    # Settings parse the egress allow-list, the secret key, the origins and hosts, and the
    # rates with the tools' own parsers.
    "settings": _ALL - {"settings", "errors", "egress", "keyring", "edge", "rate_limits"},
    "db": _ALL - {"db", "domain", "errors", "settings"},
    "bus": _ALL - {"bus", "db", "domain", "errors", "settings"},
    "trigger": _ALL - {"trigger", "errors", "settings", "domain"},
    "oidc": _ALL - {"oidc", "errors"},
    "enrichers": _ALL - {"enrichers", "errors", "settings", "domain", *_TOOLS},
    "services": _UI | {"api", "live", "runner", "runtime", "trigger", "worker"},
    "runner": _UI | {"api", "live", "runtime", "worker"},
    "live": _UI | {"api", "db", "runner", "runtime", "services", "worker"},
    "worker": _UI | {"api", "live", "runtime"},
    "keys": _UI | {"api", "live", "runtime", "worker"},
    "runtime": _UI | {"api", "worker"},
    "api": _UI | {"live", "runner", "worker"},
    "state": {"components", "pages", "enrichment_app", "api", "worker"},
    "components": {"pages", "enrichment_app", "api", "worker"},
    "pages": {"enrichment_app", "api", "worker"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """``enrichment_app.services.grid`` is in ``services``; the app module is its own layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(source: str) -> Iterator[str]:
    """Every module ``source`` imports (``from pkg import mod`` counts as ``pkg.mod``).

    A relative import comes out as dots and a name, which no rule matches; the package has
    none (``test_imports_are_absolute``).
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield base
            if base == "enrichment_app":
                yield from (f"{base}.{alias.name}" for alias in node.names)


def violations(imports: Iterable[tuple[str, str]]) -> list[str]:
    """The (module, imported module) pairs that break a layer rule, said in words."""
    found = []
    for module, imported in imports:
        layer = layer_of(module)
        top = imported.split(".")[0]
        if (top == "reflex" or top.startswith("reflex_")) and layer not in REFLEX_LAYERS:
            found.append(f"{module} imports {imported}: Reflex stays in {sorted(REFLEX_LAYERS)}")
        if top == "enrichment_app" and imported != "enrichment_app":
            target = layer_of(imported)
            if target in MAY_NOT_IMPORT.get(layer, set()):
                found.append(f"{module} imports {imported}: {layer}/ may not import {target}/")
    return found


def package_imports() -> list[tuple[str, str]]:
    pairs = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        pairs += [(module, imported) for imported in imported_modules(path.read_text())]
    return pairs


def test_every_module_is_in_a_known_layer() -> None:
    layers = {layer_of(module) for module, _ in package_imports()}
    assert layers <= _ALL, f"new layers need rules: {sorted(layers - _ALL)}"
    assert layers >= MAY_NOT_IMPORT.keys() - {"selection"}


def test_imports_are_absolute() -> None:
    assert [(m, i) for m, i in package_imports() if i.startswith(".")] == []


def test_each_layer_imports_only_downward() -> None:
    imports = package_imports()
    assert len(imports) > 200  # the walk found the package
    assert violations(imports) == []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("enrichment_app.services.grid", "reflex"),
        ("enrichment_app.db.engine", "reflex_base.registry"),
        ("enrichment_app.runner.trigger", "enrichment_app.live.events"),
        ("enrichment_app.services.jobs", "enrichment_app.state.table"),
        ("enrichment_app.runner.local", "enrichment_app.api.errors"),
        ("enrichment_app.db.migrations.env", "enrichment_app.api.app"),
        ("enrichment_app.db.models", "enrichment_app.services.jobs"),
        ("enrichment_app.domain", "enrichment_app.db.models"),
        ("enrichment_app.trigger.client", "enrichment_app.db.engine"),
        ("enrichment_app.state.tables", "enrichment_app.components.layout"),
        ("enrichment_app.bus.base", "enrichment_app.live.hub"),
        ("enrichment_app.db.engine", "enrichment_app.bus.recorder"),
    ],
)
def test_a_forbidden_import_is_reported(module: str, imported: str) -> None:
    assert len(violations([(module, imported)])) == 1


def test_a_function_level_import_counts() -> None:
    source = "def late():\n    from enrichment_app.state.table import TableState\n"
    imports = [("enrichment_app.services.x", m) for m in imported_modules(source)]
    assert violations(imports) != []
