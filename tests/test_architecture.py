"""The package's shape: imports flow one way, modules stay readable."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "planner"

#: Modules that compute an analysis; the file writer must not import them.
ENGINES = {"planner.access", "planner.network", "planner.pipeline", "planner.isochrones",
           "planner.gaps", "planner.layers", "planner.coverage", "planner.tiling"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """planner modules imported anywhere in ``path`` (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


@pytest.fixture(scope="module")
def import_graph() -> nx.DiGraph:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(paths)
    for name, path in paths.items():
        for target in _imports(path, set(paths)):
            # a package re-exporting its own modules is not a cycle
            if target != name and not target.startswith(f"{name}."):
                graph.add_edge(name, target)
    return graph


def test_no_import_cycles(import_graph):
    cycles = [cycle for cycle in nx.simple_cycles(import_graph) if "planner" not in cycle]
    assert cycles == []


def test_writer_imports_no_engine(import_graph):
    assert set(import_graph.successors("planner.outputs")) & ENGINES == set()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: path.name)
def test_modules_stay_readable(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 700


def test_public_names_are_not_shadowed_by_modules():
    """A submodule named like a public function would replace it once imported."""
    import planner
    import planner.pipeline  # noqa: F401  (imports most of the package)

    modules = {_module_name(path).rsplit(".", 1)[-1] for path in PACKAGE.glob("*.py")}
    assert modules & set(planner.__all__) == set()
    assert callable(planner.classify) and callable(planner.analyze)
