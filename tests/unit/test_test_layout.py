"""The tests and the benchmarks share tests/support/ (and the fakes), not each other.

Layers, lowest first: ``tests.support`` (servers, the prod app launcher, the socket client, the
secret scan, waiting, paths) imports nothing else of ``tests``; ``tests.fakes`` (the fake
Trigger.dev, OpenAI and web sites) imports only itself and ``tests.support``; ``bench`` imports
only those two of ``tests``; and nothing in ``tests`` imports ``bench``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import ROOT

LAYERS = {
    "tests.support": ("tests.support",),
    "tests.fakes": ("tests.support", "tests.fakes"),
    "bench": ("tests.support", "tests.fakes"),
}
"""For a package: the parts of ``tests`` its modules may import."""


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in a module, wherever it stands."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layout_violations(root: Path) -> list[str]:
    """Every import in ``root``'s tests/ and bench/ that crosses the layers; empty if none."""
    found = []
    for folder in ("tests", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            if "node_modules" in relative.parts:
                continue
            name = ".".join(relative.with_suffix("").parts)
            allowed = next(
                (parts for package, parts in LAYERS.items() if within(name, package)), None
            )
            for line, module in imported(ast.parse(path.read_text(), str(path))):
                if folder == "tests" and within(module, "bench"):
                    found.append(f"{relative}:{line} imports {module} (tests never import bench)")
                elif (
                    allowed is not None
                    and within(module, "tests")
                    and not any(within(module, part) for part in allowed)
                ):
                    found.append(
                        f"{relative}:{line} imports {module} (allowed: {', '.join(allowed)})"
                    )
    return found


def test_tests_and_benchmarks_share_only_tests_support_and_the_fakes() -> None:
    assert layout_violations(ROOT) == []


def test_the_check_reports_every_kind_of_crossing(tmp_path: Path) -> None:
    files = {
        "tests/soak/matrix.py": "from bench.machine import describe\n",
        "tests/unit/test_x.py": "def f():\n    import bench.report\n",
        "tests/support/servers.py": "from tests.e2e.conftest import ARTIFACTS\n",
        "tests/fakes/trigger/server.py": "from tests.integration import db_helpers\n",
        "bench/latency.py": "import tests.e2e.grid\nfrom tests.support.paths import ROOT\n",
        "bench/fanout.py": "from tests.fakes.trigger import FakeTrigger\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert layout_violations(tmp_path) == [
        "tests/fakes/trigger/server.py:1 imports tests.integration"
        " (allowed: tests.support, tests.fakes)",
        "tests/soak/matrix.py:1 imports bench.machine (tests never import bench)",
        "tests/support/servers.py:1 imports tests.e2e.conftest (allowed: tests.support)",
        "tests/unit/test_x.py:2 imports bench.report (tests never import bench)",
        "bench/latency.py:1 imports tests.e2e.grid (allowed: tests.support, tests.fakes)",
    ]
