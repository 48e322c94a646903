"""``cost.json``: schema ``sessionbench.cost/1``, the environment stored once, one row per
(variant, endpoint, clients), rewritten atomically after each variant; ``operations``: one
row per (variant, group, operation) of ``bench.cost.operations``, saved as each finishes
(absent from the files written before that key existed: read as none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import result_files
from bench.common.result_files import CostFile, CostOperation, CostRow
from bench.common.results import Run, rounded
from bench.common.run_folder import COST
from bench.cost import OPERATION_GROUPS  # noqa: F401 (the groups of operations rows; re-exported)

COST_FILE = COST.name
SCHEMA = "sessionbench.cost/1"


class CostRun(Run):
    """A run folder's ``cost.json`` (same life cycle as ``run.json``: running → complete)."""

    FILE = COST_FILE
    SCHEMA = SCHEMA
    MODEL = CostFile
    LISTS = ("rows", "operations")

    @property
    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.doc["rows"]
        return rows

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            CostRow.model_validate(row)  # what the readers read
        self.rows.extend(rounded(row, 6) for row in rows)
        self.save()

    def add_operation_row(self, row: dict[str, Any]) -> None:
        CostOperation.model_validate(row)
        self.doc["operations"].append(rounded(row, 6))
        self.save()


def load(folder: Path) -> CostFile:
    """The ``cost.json`` of *folder* (or the file itself), read through its model
    (``ResultFileError``, a ValueError: one line naming the file and the problem)."""
    path = folder / COST_FILE if folder.is_dir() else folder
    return result_files.load(path, CostFile)
