"""The layout mirrors the commands: packages import downwards only, no cycles, a thin CLI.

Layers, bottom up: ``bench.common`` (database, servers, environments, processes, statistics,
result files, report blocks); ``bench.pool`` (the pool instrument the load run records);
the command packages ``bench.load``, ``bench.micro``, ``bench.cost``, ``bench.pitfalls``;
``bench.history`` (a command built on ``cost``: it runs it per version set and explains with
its profiles); ``bench.report`` (reads every result file, renders what the commands registered); and
``bench.cli``, which only dispatches. Every import, lazy ones inside functions included,
is read from the source with ``ast``, so a test that imports nothing still sees them all;
so is ``importlib.import_module("bench…")``, and no module imports by a computed name but
the two that load a variant's app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
LAYERS = {
    "common": 0,
    "pool": 1,
    "load": 2,
    "micro": 2,
    "cost": 2,
    "pitfalls": 2,
    "findings": 2,
    "history": 3,
    "report": 4,
    "cli": 5,
}
COMMANDS = ("load", "micro", "cost", "pitfalls")


def module_name(path: Path) -> str:
    parts = path.relative_to(BENCH.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(BENCH.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``bench`` modules *name* (at *path*) imports, anywhere in its body."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # `from bench.common import database` imports the module bench.common.database
            submodules = {f"{source}.{alias.name}" for alias in node.names}
            found.update(submodules & known or {source})
        elif isinstance(node, ast.Call) and (target := string_import(node)) is not None:
            found.add(target)
    return {module for module in found if module in known and module != name}


def string_import(call: ast.Call) -> str | None:
    """The module a call imports by name: ``importlib.import_module("bench.x")``,
    ``import_module(...)``, ``__import__(...)`` with a string literal first argument."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


DYNAMIC_IMPORTS = {
    "bench.common.server": "a variant's app, by the module name its registry entry holds",
    "bench.micro.test_requests": "a variant's app, by the module name its registry entry holds",
    "bench.common.micro_ops": "a variant's micro hooks, by the module name its registry entry "
    "holds",
}
"""Modules allowed to import by a computed name, and why: variants are plugins, loaded by the
name the registry holds; a bench module is never loaded that way."""


def computed_imports() -> list[str]:
    """Calls in bench/ that import a module whose name is not a literal (the graph cannot see
    what they import), outside :data:`DYNAMIC_IMPORTS`."""
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or name in DYNAMIC_IMPORTS:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and string_import(node) is None:
                found.append(f"{name}: {ast.unparse(node)}")
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_bench_module_belongs_to_a_layer() -> None:
    stray = [name for name in graph() if name != "bench" and layer(name) not in LAYERS]
    assert stray == [], f"modules outside the layout's packages: {stray}"


def test_packages_import_downwards_only() -> None:
    wrong = []
    for name, targets in graph().items():
        source = layer(name)
        for target in sorted(targets):
            into = layer(target)
            if source not in LAYERS or into not in LAYERS or into == source:
                continue  # modules outside the layers: the test above names them
            if LAYERS[into] >= LAYERS[source]:
                wrong.append(f"{name} -> {target}")
    assert wrong == [], "imports that point up or sideways:\n" + "\n".join(wrong)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_packages_import_neither_each_other_nor_the_report(command: str) -> None:
    others = {*COMMANDS, "report", "cli"} - {command}
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if layer(name) == command
        for target in targets
        if layer(target) in others
    ]
    assert wrong == []


def test_no_import_cycle_among_bench_modules() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_cycle_detection_sees_a_cycle(tmp_path: Path) -> None:
    """The graph reader is not blind: two modules importing each other form an edge pair."""
    (tmp_path / "a.py").write_text("from bench.common import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from bench.common.a import x\n")
    known = {"bench.common.a", "bench.common.b"}
    assert imports("bench.common.a", tmp_path / "a.py", known) == {"bench.common.b"}
    assert imports("bench.common.b", tmp_path / "b.py", known) == {"bench.common.a"}


def test_the_graph_sees_imports_by_string(tmp_path: Path) -> None:
    """An ``importlib`` import of a bench module is an edge like any other."""
    (tmp_path / "a.py").write_text(
        "import importlib\n\ndef f():\n    importlib.import_module('bench.load.report')\n"
    )
    (tmp_path / "b.py").write_text(
        "from importlib import import_module\nimport_module('bench.x')\n"
    )
    known = {"bench.common.a", "bench.load.report", "bench.x"}
    assert imports("bench.common.a", tmp_path / "a.py", known) == {"bench.load.report"}
    assert imports("bench.common.b", tmp_path / "b.py", known) == {"bench.x"}


def test_no_bench_module_imports_by_a_computed_name() -> None:
    """Sections and commands are imported statically (bench/report/sections.py), never from
    a list of names: an import the graph could not see. Variants are the one exception."""
    assert computed_imports() == []


def test_cli_only_dispatches() -> None:
    lines = (BENCH / "cli.py").read_text().splitlines()
    assert len(lines) < 100, f"bench/cli.py has {len(lines)} lines"
