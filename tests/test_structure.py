"""The package's shape: no import circles between its top-level modules, no file past 600 lines.

The import graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` anywhere in a file, function-level ones included (a lazy import still ties the
two modules together), collapsed to the top-level module or package under ``timescale_probe``
(``timescale_probe.checkpoints.loader`` counts as ``checkpoints``). Imports inside one package
are not edges.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "timescale_probe"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Edges between top-level parts of the package (``stack -> cells`` ...), from every import statement."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        mod = _module_name(path)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                parts = t.split(".")
                if parts[0] == "timescale_probe" and len(parts) > 1:
                    src, dst = mod.split(".")[1] if "." in mod else mod, parts[1]
                    if src != dst and src != "timescale_probe":
                        edges[src].add(dst)
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components with more than one member: each one is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

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
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_lazy_imports():
    """The reader is not blind: the layering it checks is there (stack reads cells; models reads
    stack; distributions reads checkpoints inside a function)."""
    edges = import_graph()
    assert "cells" in edges["stack"] and "stack" in edges["models"] and "checkpoints" in edges["distributions"]


def test_circle_finder_finds_a_circle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycles():
    cycles = strongly_connected(import_graph())
    assert not cycles, "import circles between top-level modules: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def test_package_files_under_600_lines():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[path.relative_to(PACKAGE).as_posix()] = n
    assert not long, f"package files over {MAX_LINES} lines: {long}"


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in the file, lazy imports included); a
    module importing its own parent package (``from . import x`` inside it) is not an edge."""
    mods = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for c in candidates:
                if c in mods and c != mod and not mod.startswith(c + "."):
                    edges[mod].add(c)
    return edges


def test_no_module_level_import_cycles():
    """No circle between modules either (e.g. reproduce.multiseed <-> reproduce.steps, or a loader
    importing a constant back from the loader that imports it)."""
    cycles = strongly_connected(module_graph())
    assert not cycles, "import circles between modules: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)
