"""One-way layers, checked on the source (``ast``), without importing anything.

- no import cycle inside ``meshline`` (imports at module level and inside
  functions count; ``if TYPE_CHECKING:`` blocks do not, they never run);
- the router's modules import no private (``_x``) name from another module;
- nothing outside ``meshline/events.py`` reads a private slot of ``CloudEvent``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from meshline.events import CloudEvent

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "meshline"
# The router stack, bottom to top (see meshline/compiler/plan.py)
ROUTER_MODULES = ("plan", "chain", "batched", "trigger", "router", "dofn")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at module level, in functions and classes."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _owner(name: str) -> str | None:
    """The ``meshline`` module that ``name`` (a module, or a name in one) comes from."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The ``meshline`` modules an import statement runs (their packages' ``__init__`` aside)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            if MODULES[module].name != "__init__.py":
                base.pop()
            base = base[: len(base) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
    return [m for m in map(_owner, names) if m and m != module]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = {t for node in _imports(tree) for t in _targets(module, node)}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a → b → … → a``) per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, c) for c in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest way from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def test_no_import_cycle_inside_meshline() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_imports_inside_functions_count_and_type_checking_blocks_do_not() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from meshline.compiler.dofn import RouteFn\n"
        "def f():\n    from meshline.compiler import router\n"
    )
    targets = {t for node in _imports(tree) for t in _targets("meshline.compiler.plan", node)}
    assert targets == {"meshline.compiler.router"}


@pytest.mark.parametrize("name", ROUTER_MODULES)
def test_the_router_imports_no_private_name(name: str) -> None:
    module = f"meshline.compiler.{name}"
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    private = []
    for node in _imports(tree):
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            private += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        else:
            parts = [p for a in node.names for p in a.name.split(".")]
        private += [".".join(parts) for p in parts if p.startswith("_") and p != "__future__"]
    assert not private, f"{module} imports private names: {private}"


def _private_slots() -> set[str]:
    return {s for s in CloudEvent.__slots__ if s.startswith("_")}


def test_cloudevent_has_private_slots_to_guard() -> None:
    assert _private_slots()  # else the test below checks nothing


def test_nothing_outside_events_reads_a_private_slot_of_cloudevent() -> None:
    slots = _private_slots()
    found = []
    for directory in ("meshline", "tests", "bench"):
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path == PACKAGE / "events.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in slots:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "setattr")
                    and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value in slots
                ):
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}(…, {node.args[1].value!r})"
                    )
    assert not found, "private slots of CloudEvent used outside meshline/events.py:\n" + "\n".join(found)


# Modules that hold one idea whole and may be longer (issue 20): the jq parser and
# compiler, the CESQL parser, and the TriggerMesh-style mapping language.
LONG_MODULES_ALLOWED = {
    "meshline.transforms.jqc.parser",
    "meshline.transforms.jqc.compiler",
    "meshline.transforms.cesql._parser",
    "meshline.transforms.mapping",
}
MAX_LINES = 700


def test_no_module_over_700_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= LONG_MODULES_ALLOWED, {k: v for k, v in long.items() if k not in LONG_MODULES_ALLOWED}
