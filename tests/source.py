"""What the tests read from the suite's own source: string constants its code spells."""

import ast
from collections.abc import Container
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def spelled(names: Container[str], skip: Path) -> list[str]:
    """``path:line: value`` of every string constant in bench/'s code (docstrings excluded)
    that is one of *names*, outside *skip* (the one module that owns them)."""
    found = []
    for path in sorted(BENCH.rglob("*.py")):
        if path == skip:
            continue
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings
        ]
    return found
