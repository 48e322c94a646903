"""Run a history: per version set, its environment, the contract check, then ``cost``.

Each set's cost run is an ordinary cost run folder (``sets/<set>/``: cost.json and its
profiles), measured with every variant served on the set's interpreter
(``environments.all_on``); ``history.json`` collects its rows as points and is saved after
every set. A variant whose server does not start, or that fails the contract check, in a
set's environment cannot run there: recorded with the one-line reason, not measured. Ctrl-C
or SIGTERM: the set being measured is marked ``incomplete``, the rest stay ``pending``, and
the file is marked ``incomplete`` (``bench.common.lifecycle``); ``--resume`` keeps the
sets already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import database, environments, result_files
from bench.common.lifecycle import RunLifecycle
from bench.common.processes import Interrupted
from bench.common.results import Run, rounded
from bench.common.run_folder import HISTORY, RunFolder
from bench.common.server import ServerError, VariantServer
from bench.common.verify import verify
from bench.cost.command import PRESETS
from bench.cost.measure import Plan
from bench.cost.runner import CostConfig, run_cost
from bench.history import envs, steps
from bench.history.sets import VersionSet

SCHEMA = "sessionbench.history/1"
OPS: dict[str, int] = PRESETS["quick"]["ops"]  # cost --quick's requests per repeat
"""Requests per repeat: cost's quick preset (``bench.cost.command.PRESETS``)."""


class HistoryRun(Run):
    """A history folder's ``history.json`` (running → complete, like cost.json)."""

    FILE = HISTORY.name
    SCHEMA = SCHEMA
    MODEL = result_files.HistoryFile
    LISTS = ()

    def entry(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(s for s in self.doc["sets"] if s["name"] == name)
        return found

    def add_points(self, points: list[dict[str, Any]]) -> None:
        for point in points:
            result_files.HistoryPoint.model_validate(point)
        self.doc["points"].extend(rounded(p, 6) for p in points)
        self.save()


@dataclass(frozen=True)
class HistoryConfig:
    sets: list[VersionSet]
    variants: list[str]
    endpoints: list[str]
    repeats: int
    out: Path
    valgrind: str
    lanes: int = 2
    requests: int | None = None
    resume: bool = False
    explain: int = 3
    """The largest steps explained with the per-function diff."""
    labels: dict[str, str] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {
            "sets": [s.name for s in self.sets],
            "variants": self.variants,
            "endpoints": self.endpoints,
            "repeats": self.repeats,
            "requests": {e: self.requests or OPS[e] for e in self.endpoints},
            "lanes": self.lanes,
            "explain": self.explain,
        }

    def plan(self) -> Plan:
        return Plan(
            endpoints=self.endpoints,
            clients=[1],
            ops={e: self.requests or OPS[e] for e in OPS},
            repeats=self.repeats,
            warmup=32,
            first_warmup=8,
        )


Say = Callable[[str], None]


def stderr(line: str) -> None:
    print(f"history: {line}", file=sys.stderr, flush=True)


def run_history(config: HistoryConfig, say: Say = stderr) -> HistoryRun:
    """Measure every set of *config* (see the module); the history file, finished."""
    folder = RunFolder(config.out)
    kept = _kept(config) if config.resume else None
    baseline = envs.installed()
    sets = [_entry(s, baseline) for s in config.sets]
    lifecycle = RunLifecycle(
        HistoryRun,
        config.out,
        settings=config.settings(),
        env={"valgrind": config.valgrind},
        fields={"sets": sets, "points": [], "steps": []},
    )
    started = time.monotonic()
    with lifecycle as life, database.database_url_or_embedded() as (url, _), _database_env(url):
        run = life.run
        run.doc["variants"] = {v: {"label": config.labels.get(v, v)} for v in config.variants}
        failed = 0
        for n, s in enumerate(config.sets, 1):
            entry = run.entry(s.name)
            where = f"[{n}/{len(config.sets)}] {s.name}"
            if kept is not None and s.name in kept[0]:
                entry.update(kept[0][s.name])
                run.add_points(kept[1][s.name])
                say(f"{where}: kept from the previous run")
                continue
            shutil.rmtree(folder.sets / s.name, ignore_errors=True)

            def said(line: str, where: str = where) -> None:
                say(f"{where}: {line}")

            try:
                _measure(run, entry, s, config, url, said)
            except Interrupted:
                entry["status"] = "incomplete"
                raise
            except Exception as exc:  # a bug: the set says so, the run stops with it
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
                raise
            finally:
                run.save()
            failed += entry["status"] != "done"
        run.doc["measure_seconds"] = round(time.monotonic() - started, 1)
        life.status = "complete" if not failed else "partial"
    if run.doc["status"] != "running":  # finished: the steps of the sets done, even if cut short
        refresh_steps(run, config.explain, say)
    return life.run


def refresh_steps(run: HistoryRun, explain: int, say: Say = stderr) -> None:
    """Find (and explain the *explain* largest) steps of the sets *run* has done; saved."""
    run.doc["steps"] = steps.find(run.doc, run.folder, explain)
    run.save()
    for step in run.doc["steps"]:
        say(steps.line(step))


def _entry(s: VersionSet, baseline: dict[str, str]) -> dict[str, Any]:
    envs.lock(s)
    return {
        "name": s.name,
        "package": s.package,
        "version": s.version,
        "changed": envs.changed(s, baseline),
        "packages": envs.locked(s),
        "status": "pending",
        "cannot_run": {},
    }


def _kept(config: HistoryConfig) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]]] | None:
    """The sets already done in ``--out``'s history with the same variants, endpoints and
    repeats, and their points (None: no such file)."""
    path = RunFolder(config.out).history
    if not path.exists():
        return None
    doc = result_files.load_document(path, result_files.HistoryFile)
    same = all(doc["settings"].get(k) == v for k, v in config.settings().items() if k != "sets")
    done = {s["name"]: s for s in doc["sets"] if s["status"] == "done"} if same else {}
    points: dict[str, list[Any]] = {name: [] for name in done}
    for point in doc.get("points", []):
        if point["set"] in done:
            points[point["set"]].append(point)
    return done, points


@contextlib.contextmanager
def _database_env(url: database.DatabaseUrl) -> Iterator[None]:
    """``DATABASE_URL`` set for the block: every set's cost run uses the one database."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url.url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before


def _measure(
    run: HistoryRun,
    entry: dict[str, Any],
    s: VersionSet,
    config: HistoryConfig,
    url: database.DatabaseUrl,
    say: Say,
) -> None:
    """One set: environment, contract check, cost; *entry* updated with how it went."""
    entry["status"] = "running"
    started = time.monotonic()
    try:
        python = envs.environment(s).ensure()
    except environments.EnvironmentBuildError as exc:
        entry.update(status="failed", error=str(exc))
        say(f"environment failed: {exc}")
        return
    entry["environment_seconds"] = round(time.monotonic() - started, 1)
    with environments.all_on(python):
        entry["cannot_run"] = cannot_run(config.variants, url)
        for name, reason in entry["cannot_run"].items():
            say(f"{name} cannot run: {reason}")
        runnable = [v for v in config.variants if v not in entry["cannot_run"]]
        if not runnable:
            entry["status"] = "done"
            return
        started = time.monotonic()
        cost = _cost(s, runnable, config, say)
    entry["measure_seconds"] = round(time.monotonic() - started, 1)
    errors = {n: i["error"] for n, i in cost.doc["variants"].items() if i.get("error")}
    if errors:
        entry["error"] = "; ".join(f"{n}: {e.splitlines()[0]}" for n, e in errors.items())
    run.add_points(
        [
            {
                "set": s.name,
                "variant": r["variant"],
                "endpoint": r["endpoint"],
                "instructions_per_request": r["instructions_per_request"],
                "spread_percent": r["spread_percent"],
                "repeats": r["repeats"],
            }
            for r in cost.doc["rows"]
            if r["clients"] == 1
        ]
    )
    if cost.doc.get("interrupted_by"):  # the cost run swallowed the signal: stop here too
        raise Interrupted(cost.doc["interrupted_by"])
    entry["status"] = "failed" if errors or cost.doc["status"] != "complete" else "done"


def cannot_run(names: list[str], url: database.DatabaseUrl) -> dict[str, str]:
    """The variants of *names* whose server does not start or that fail the contract check
    on the current interpreter (``environments.all_on``), each with the one-line reason."""
    reasons: dict[str, str] = {}
    asyncio.run(database.ensure_schema(url))
    with tempfile.TemporaryDirectory(prefix="sessionbench-history-") as logs:
        for name in names:
            server = VariantServer(name, url, log_path=Path(logs) / f"{name}.log")
            try:
                server.start(timeout=60.0)
            except ServerError:
                reasons[name] = _reason(server.log_tail(40))
                server.stop()
                continue
            try:
                failures = [o for o in verify(server.base_url, database=url) if not o.ok]
            finally:
                server.stop()
            if failures:
                reasons[name] = "contract check failed: " + ", ".join(
                    f"{o.check} ({(o.error or '').splitlines()[0][:80]})" for o in failures[:3]
                )
    return reasons


def _reason(log: str) -> str:
    """The line of a failed start-up's log that says why: its last exception line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if ("Error" in line or "Exception" in line) and ":" in line]
    return (errors or lines or ["no output"])[-1][:300]


def _cost(s: VersionSet, runnable: list[str], config: HistoryConfig, say: Say) -> Any:
    cost_config = CostConfig(
        mode="history",
        variants=runnable,
        plan=config.plan(),
        pool_size=10,
        max_overflow=0,
        out=(RunFolder(config.out).sets / s.name).resolve(),
        valgrind=config.valgrind,
        lanes=config.lanes,
    )

    def progress(label: str, done: int, total: int) -> None:
        if label != "done":
            say(f"cost {done + 1}/{total} {label}")

    return run_cost(cost_config, progress)
