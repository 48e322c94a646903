"""The load scenarios: one tiny locustfile each in ``bench/load/locustfiles``.

A scenario's label is the first line of its locustfile's docstring.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

LOCUSTFILES = Path(__file__).resolve().parent / "locustfiles"


@dataclass(frozen=True)
class Scenario:
    name: str

    @property
    def locustfile(self) -> Path:
        return LOCUSTFILES / f"{self.name}.py"

    @property
    def label(self) -> str:
        doc = ast.get_docstring(ast.parse(self.locustfile.read_text())) or self.name
        return doc.splitlines()[0]


SCENARIOS: dict[str, Scenario] = {
    name: Scenario(name) for name in ("read", "write", "mixed", "multi")
}
