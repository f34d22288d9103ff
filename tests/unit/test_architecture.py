"""The import rules of docs/architecture.md, checked from the code's imports.

Layers, lowest first: config, domain, observability (cross-cutting), adapters, services, the
composition root (shared/bootstrap.py), functions, function_app. A module imports its own
layer or lower ones, never higher; no product modules import each other in a circle.
Dev tooling, benchmarks and tests are outside the product and may import anything.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.import_rules import (
    Violation,
    cycle_violations,
    cycles,
    import_graph,
    imports_of,
    layer_of,
    product_modules,
    upward_imports,
)

ROOT = Path(__file__).resolve().parents[2]


def _report(violations: list[Violation]) -> str:
    return "\n".join(str(v) for v in violations)


def test_no_import_cycle_among_product_modules() -> None:
    found = cycle_violations(import_graph(ROOT))
    assert not found, "import cycles (break the named edge):\n" + _report(found)


def test_no_upward_import_and_every_module_in_a_layer() -> None:
    found = upward_imports(import_graph(ROOT))
    assert not found, "imports against the layers (docs/architecture.md):\n" + _report(found)


def test_the_graph_sees_the_product() -> None:
    # Guards the checker against a silent miss (a renamed root would make every test pass).
    graph = import_graph(ROOT)
    assert {"function_app", "functions.http", "shared.bootstrap"} <= set(graph)
    assert "shared.bootstrap" in graph["functions.orders"]
    # Every module but the bare root package (empty) sits in a layer.
    assert [m for m in graph if layer_of(m) is None] == ["shared"]


# The checker itself, on tiny synthetic graphs and files.


def test_cycles_finds_a_loop_and_names_its_edges() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    [violation] = cycle_violations(graph)
    assert violation.edge == ("c", "a")
    assert "a -> b -> c -> a" in str(violation)


def test_cycles_ignores_a_tree_and_finds_two_separate_loops() -> None:
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    loops = cycles({"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"x"}})
    assert loops == [["a", "b", "a"], ["x", "y", "x"]]


def test_an_upward_import_is_reported_with_its_layers() -> None:
    graph = {
        "shared.domain.model": {"shared.adapters.tables"},
        "shared.adapters.tables": {"shared.domain.model", "shared.config.settings"},
        "shared.config.settings": set(),
        "functions.http": {"shared.observability.correlation"},
        "shared.observability.correlation": set(),
        "shared.services.x": {"shared.bootstrap"},
        "shared.bootstrap": set(),
    }
    found = upward_imports(graph)
    assert [v.edge for v in found] == [
        ("shared.domain.model", "shared.adapters.tables"),
        ("shared.services.x", "shared.bootstrap"),
    ]
    assert str(found[0]) == (
        "upward import: shared.domain.model -> shared.adapters.tables "
        "(domain may not import adapters)"
    )


def test_a_module_outside_every_layer_is_reported() -> None:
    found = upward_imports({"shared.stray": set(), "functions.a": {"shared.stray"}})
    assert [v.kind for v in found] == ["no layer"]


def test_imports_are_read_everywhere_but_the_main_block(tmp_path: Path) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "__init__.py").write_text("")
    (tmp_path / "functions" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n"
        "    from functions.c import Thing\n"
        "def later():\n"
        "    import function_app\n"
        "if __name__ == '__main__':\n"
        "    import functions.d\n"
    )
    for name in ("b", "c", "d"):
        (tmp_path / "functions" / f"{name}.py").write_text("")
    (tmp_path / "function_app.py").write_text("from functions import a\n")
    modules = product_modules(tmp_path)
    assert imports_of("functions.a", modules["functions.a"], modules) == {
        "functions.b",
        "functions.c",
        "function_app",
    }
    graph = import_graph(tmp_path)
    assert [v.edge for v in cycle_violations(graph)] == [("functions.a", "function_app")]
