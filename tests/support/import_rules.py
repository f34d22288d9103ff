"""The import rules, read from the code: no circles among product modules, no upward import.

Every module's imports are read with ``ast`` (top-level, function-level and ``TYPE_CHECKING``
ones alike: a lazy import is still a dependency), so the check needs no import of the code.
The one exception is a module's ``if __name__ == "__main__":`` block: it runs only when the
module is the program (``python -m ...``), never when another module imports it, so what it
imports is the program's dependency, not the module's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Lowest first. A module may import its own layer or any layer below it, never one above.
# ``observability`` is cross-cutting: below the adapters so that they and everything above may
# use it, above the domain so that the domain stays pure (no telemetry, no I/O).
LAYERS: tuple[tuple[str, str], ...] = (
    ("config", "shared.config"),
    ("domain", "shared.domain"),
    ("observability", "shared.observability"),
    ("adapters", "shared.adapters"),
    ("services", "shared.services"),
    ("composition root", "shared.bootstrap"),
    ("functions", "functions"),
    ("function_app", "function_app"),
)
PRODUCT_ROOTS = ("function_app", "functions", "shared")


def layer_of(module: str) -> tuple[int, str] | None:
    """The layer's rank and name for a product module, or None when it belongs to no layer."""
    for rank, (name, prefix) in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank, name
    return None


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules(root: Path) -> dict[str, Path]:
    """Every product module under ``root`` by its dotted name."""
    found: dict[str, Path] = {}
    for top in PRODUCT_ROOTS:
        single = root / f"{top}.py"
        if single.is_file():
            found[top] = single
        folder = root / top
        if folder.is_dir():
            for path in sorted(folder.rglob("*.py")):
                found[module_name(root, path)] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _is_main_guard(node: ast.AST) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    names = [test.left, *test.comparators]
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
        isinstance(n, ast.Constant) and n.value == "__main__" for n in names
    )


def _walk_outside_main(tree: ast.Module) -> Iterable[ast.AST]:
    """Every node of the module except those of a top-level ``__main__`` block."""
    for statement in tree.body:
        if _is_main_guard(statement):
            continue
        yield from ast.walk(statement)


def imports_of(module: str, path: Path, known: Iterable[str]) -> set[str]:
    """The product modules ``module`` imports (resolving ``from pkg import submodule``)."""
    known_set = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if _is_package(path) else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in _walk_outside_main(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                keep = len(base_parts) - (node.level - 1)
                base = ".".join(base_parts[:keep])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                targets.add(candidate if candidate in known_set else source)
    resolved: set[str] = set()
    for target in targets:
        # ``import a.b.c`` of a non-module attribute path: the longest known prefix.
        name = target
        while name and name not in known_set:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.add(name)
    return resolved


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the product modules it imports, for every product module under ``root``."""
    modules = product_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


@dataclass(frozen=True)
class Violation:
    """One broken rule, said so that the offending edge can be found and fixed."""

    kind: str
    edge: tuple[str, str]
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.edge[0]} -> {self.edge[1]} ({self.detail})"


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The circles of the graph: each strongly connected component of more than one module,
    given as one concrete loop through it (first module repeated at the end)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    # Iterative Tarjan: the graph can be deep enough to trouble the recursion limit.
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_loop_through(sorted(c), graph) for c in sorted(components)]


def _loop_through(members: list[str], graph: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest loop from the component's first module back to itself (for the message)."""
    inside = set(members)
    start = members[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child not in inside:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [*members, start]


def upward_imports(graph: Mapping[str, Iterable[str]]) -> list[Violation]:
    """Every edge from a module to a module of a higher layer, or from a layer to an unlayered
    product module (each product module must live in a layer)."""
    found: list[Violation] = []
    for source in sorted(graph):
        source_layer = layer_of(source)
        for target in sorted(graph[source]):
            target_layer = layer_of(target)
            if source_layer is None or target_layer is None:
                unplaced = source if source_layer is None else target
                found.append(Violation("no layer", (source, target), f"{unplaced} is in no layer"))
            elif target_layer[0] > source_layer[0]:
                found.append(
                    Violation(
                        "upward import",
                        (source, target),
                        f"{source_layer[1]} may not import {target_layer[1]}",
                    )
                )
    return found


def cycle_violations(graph: Mapping[str, Iterable[str]]) -> list[Violation]:
    """One violation per circle, naming the loop's closing edge and the whole loop."""
    found: list[Violation] = []
    for loop in cycles(graph):
        found.append(Violation("import cycle", (loop[-2], loop[-1]), " -> ".join(loop)))
    return found
