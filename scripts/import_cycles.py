#!/usr/bin/env python3
"""Fail when modules of the package import each other in a cycle.

Every ``import`` and ``from ... import`` counts: at module level, inside functions and under
``if TYPE_CHECKING:``. A function-level import hides a cycle from the interpreter, not from
the reader, and a TYPE_CHECKING import is still a dependency of the design.
``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``;
``import a.b`` is an edge to the longest prefix that is a module; relative imports are
resolved. Only edges between modules of the package count.

The cycles are the strongly connected components with more than one module (Tarjan). Each is
printed with its size, its members and one closed path through it with the import lines.

Usage: ``python scripts/import_cycles.py [PACKAGE_DIR]`` (default: ``src/dockyard`` next to
this script). Exit status 1 when there is a cycle, else 0.
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from pathlib import Path

DEFAULT_PACKAGE = Path(__file__).resolve().parent.parent / "src" / "dockyard"

Graph = Mapping[str, Mapping[str, int]]
"""Module → {imported module: line of its first import}."""


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted name → file of every module under ``package_dir`` (named after the directory)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_names(tree: ast.AST, package: str) -> Iterator[tuple[str, str, int]]:
    """(name, fallback, line) per imported name; ``fallback`` is used if ``name`` is no module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                if node.level > len(parts):
                    continue  # beyond the top-level package: Python refuses it too
                kept = parts[: len(parts) - node.level + 1]
                base = ".".join([*kept, base] if base else kept)
            for alias in node.names:
                yield f"{base}.{alias.name}", base, node.lineno


def _longest_module(name: str, modules: Mapping[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package_dir: Path) -> dict[str, dict[str, int]]:
    """The import graph of the package's modules (see the module docstring for the edges)."""
    modules = module_files(package_dir)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_bytes(), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported, fallback, line in _imported_names(tree, package):
            target = imported if imported in modules else _longest_module(fallback, modules)
            if target is not None and target != name:
                graph[name].setdefault(target, line)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted by name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> Iterator[str]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return iter(sorted(graph[node]))

    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, visit(root))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    work.append((child, visit(child)))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while not component or component[-1] != node:
                        component.append(stack.pop())
                        on_stack.discard(component[-1])
                    components.append(sorted(component))
    return components


def find_cycles(package_dir: Path) -> list[list[str]]:
    """The import cycles of the package: components of 2+ modules, largest first."""
    components = strongly_connected(import_graph(package_dir))
    return sorted((c for c in components if len(c) > 1), key=lambda c: (-len(c), c))


def cycle_path(graph: Graph, members: Sequence[str]) -> list[str]:
    """A shortest closed path from ``members[0]`` back to itself, staying inside ``members``."""
    start, inside = members[0], set(members)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child in inside and child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise ValueError(f"{start} is on no cycle inside {members}")


def main(argv: Sequence[str]) -> int:
    package_dir = Path(argv[0]) if argv else DEFAULT_PACKAGE
    graph = import_graph(package_dir)
    cycles = find_cycles(package_dir)
    for members in cycles:
        print(f"import cycle of {len(members)} modules: {', '.join(members)}")
        path = cycle_path(graph, members)
        steps = (f"{a} -> {b} (l.{graph[a][b]})" for a, b in pairwise(path))
        print("  e.g. " + "\n       ".join(steps))
    if cycles:
        print(f"{len(cycles)} import cycle(s) among {len(graph)} modules")
        return 1
    print(f"no import cycles among {len(graph)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
