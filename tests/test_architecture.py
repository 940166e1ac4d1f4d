"""The packages import downhill only (gpu_tasks <- scheduler <- workers; cli apart), computed from the
code's own imports: no cycle between packages or between modules, and no import hidden in a function."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.support import ROOT

PACKAGES = ("gpu_tasks", "scheduler", "workers", "cli", "gpuq", "compose", "tests", "benchmarks")
PRODUCT = ("gpu_tasks", "scheduler", "workers", "cli", "gpuq")
# What each package may import of ours; anything else is an import uphill.
ALLOWED = {
    "gpu_tasks": set(),
    "scheduler": {"gpu_tasks"},
    "workers": {"gpu_tasks", "scheduler", "cli"},  # cli: runlocal writes the CLI's config file
    "cli": set(),
    "gpuq": {"cli"},  # the Python client's import name: cli/library.py
}
# Function-level imports of our own modules, each for a reason other than hiding a dependency.
LATE_IMPORTS = {
    # The worker's modules import Django models: they can only be imported once the GPU is settled and
    # django.setup() has run.
    ("workers.__main__", "workers.service"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports(name: str) -> list[tuple[str, bool]]:
    """(module imported, whether at function level) for every import of ours in module `name`."""
    path = modules()[name]
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        for target in _targets(name, path, node):
            if target in modules() and target != name:
                found.append((target, id(node) not in top and not _in_type_checking(tree, node)))
    return found


def _targets(name: str, path: Path, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    # `from a.b import c` imports the module a.b.c where there is one, else names from a.b.
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base for alias in node.names]


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    return any(
        isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test) and node in ast.walk(block)
        for block in tree.body
    )


def graph() -> dict[str, set[str]]:
    return {name: {target for target, _ in imports(name)} for name in modules()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for name, targets in graph().items():
        edges[name.split(".")[0]] |= {t.split(".")[0] for t in targets} - {name.split(".")[0]}
    return edges


def test_it_finds_a_cycle_where_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_it_reads_the_imports_of_a_module():
    assert ("scheduler.fleet.router", False) in imports("scheduler.fleet.store")
    assert ("workers.service", True) in imports("workers.__main__")


def test_no_module_imports_itself_back():
    assert cycles(graph()) == []


def test_no_package_imports_itself_back():
    assert cycles(package_graph()) == []


def test_packages_import_downhill_only():
    edges = package_graph()
    uphill = {p: sorted(edges[p] - ALLOWED[p]) for p in PRODUCT if edges[p] - ALLOWED[p]}
    assert uphill == {}
    assert "workers" not in edges["scheduler"]


def test_benchmarks_and_tests_do_not_import_each_other_both_ways():
    edges = package_graph()
    assert not ("tests" in edges["benchmarks"] and "benchmarks" in edges["tests"])
    assert "tests" not in edges["benchmarks"]


def test_no_import_of_ours_hides_in_a_function():
    late = {
        (name, target)
        for name in modules()
        if name.split(".")[0] in PRODUCT
        for target, in_function in imports(name)
        if in_function
    }
    assert late == LATE_IMPORTS
