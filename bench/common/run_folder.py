"""A run folder: the one place that names its files and says which command writes each.

Every module that reads or writes a result file names it through :class:`RunFolder` (or
the :data:`FILES` below), never as a literal. A file's model (``bench.common.result_files``)
is what its writer writes and its readers read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResultFile:
    """A file of a run folder: its name, the command that writes it, what it holds."""

    name: str
    writer: str
    holds: str


RUN = ResultFile(
    "run.json",
    "run",
    "the load run: settings, environment, series, one record per cell, the co-scheduled pass",
)
PITFALLS = ResultFile("pitfalls.json", "pitfalls", "the pitfall matrix: one record per cell")
COST = ResultFile(
    "cost.json", "cost", "instruction counts: one row per (variant, endpoint, clients), operations"
)
MICRO = ResultFile(
    "micro.json", "micro", "pytest-benchmark's own JSON, with micro's status under `sessionbench`"
)
HISTORY = ResultFile(
    "history.json",
    "history",
    "instructions per request across version sets: one point per (set, variant, endpoint), steps",
)
REPORT = ResultFile("report.md", "report", "the report in Markdown")
INDEX = ResultFile("index.html", "report", "the same report, self-contained HTML")
FILES = (RUN, PITFALLS, COST, MICRO, HISTORY, REPORT, INDEX)
"""Every file a run folder can hold, in the order the commands usually write them."""
RESULTS = (RUN, PITFALLS, COST, HISTORY)
"""The files that make a folder a run folder the report can read on their own."""
PLOTS = "plots"
"""The report's figures (PNG), referenced relatively from report.md and index.html."""
PROFILES = "profiles"
"""``cost``'s per-function profiles (bench/cost/profile.py)."""
SETS = "sets"
"""``history``'s version sets: ``sets/<set>/`` is that set's cost run folder."""


class RunFolder:
    """The files of one run folder, by what they are."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, which: ResultFile) -> Path:
        return self.path / which.name

    def has(self, which: ResultFile) -> bool:
        return (self.path / which.name).is_file()

    @property
    def run(self) -> Path:
        return self.file(RUN)

    @property
    def pitfalls(self) -> Path:
        return self.file(PITFALLS)

    @property
    def cost(self) -> Path:
        return self.file(COST)

    @property
    def micro(self) -> Path:
        return self.file(MICRO)

    def has_history(self) -> bool:
        return self.has(HISTORY)

    @property
    def history(self) -> Path:
        return self.file(HISTORY)

    @property
    def sets(self) -> Path:
        """``history``'s version sets, one cost run folder each (``sets/<set>/``)."""
        return self.path / SETS

    @property
    def report(self) -> Path:
        return self.file(REPORT)

    @property
    def index(self) -> Path:
        return self.file(INDEX)

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    def results(self) -> list[ResultFile]:
        """The result files (run.json, pitfalls.json, cost.json, history.json) this folder holds."""
        return [f for f in RESULTS if self.has(f)]


def names(files: tuple[ResultFile, ...] = RESULTS) -> str:
    """``run.json, pitfalls.json, cost.json``: for messages."""
    return ", ".join(f.name for f in files)
