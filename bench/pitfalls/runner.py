"""Run the pitfall matrix: every selected variant as its own server, every scenario against each.

Order of work: one PostgreSQL (embedded, or ``DATABASE_URL``), reset to the seed; every
variant started as a ``sessionbench serve`` child with the same pool (a short pool timeout,
so exhaustion shows in seconds, not minutes), as many at once as there are CPUs; then
scenario by scenario, each variant in turn. The pool's pre-ping is a setting of the matrix
(``--pre-ping``): by default the scenarios in ``scenarios.PRE_PING_SWEEP`` run once with it
off and once on, every other scenario with it off; each cell records the setting it ran
under (``pool_pre_ping``). A scenario in ``scenarios.SHARED`` (the PostgreSQL restart, on an
embedded PostgreSQL) runs every variant and setting at once: a server started for each
(in parallel), all loaded through one restart, each then judged on its own. A scenario in
``scenarios.REPEATED`` runs ``repeats`` times per cell, interleaved across variants (A B C A
B C …), and its cell is the runs folded into the worst outcome with its count
(``bench.pitfalls.repeats``). After every cell ``pitfalls.json`` is rewritten atomically. A
variant whose server died, or was left with connections checked out or not answering, is
restarted before its next cell (the cell says so; the restarts a scenario's row left are
done together, in parallel, before the next row), so one scenario's damage does not leak
into the next. A scenario that crashes records ``error`` with its message and the run goes
on. ``timings`` in ``pitfalls.json``: wall seconds of start-up, restarts and each row.
Ctrl-C or SIGTERM: every child stopped, status ``incomplete`` (``bench.common.lifecycle``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import variants
from bench.common import database, drivers, integrity
from bench.common.lifecycle import RunLifecycle, stopping
from bench.common.processes import Interrupted, raise_interrupted
from bench.common.result_files import PitfallCell, PitfallFile
from bench.common.results import Run, rounded
from bench.common.run_folder import PITFALLS
from bench.common.server import ServerError, VariantServer
from bench.pitfalls import scenarios
from bench.pitfalls.probe import (
    ERROR,
    SKIPPED,
    Outcome,
    Skip,
    Target,
    plural,
    responsive,
    settle,
)
from bench.pitfalls.repeats import aggregate
from variants.settings import PRE_PING_ENV, DatabaseUrl

SCHEMA = "sessionbench.pitfalls/1"
PITFALLS_FILE = PITFALLS.name
CELL_TIMEOUT = 120.0  # s: a scenario still running after this is recorded as an error
K = TypeVar("K")
T = TypeVar("T")


@dataclass(frozen=True)
class PitfallConfig:
    mode: str
    variants: list[str]
    scenarios: list[str]
    soak: float
    pool_size: int
    pool_timeout: float
    out: Path
    driver: str | None = None
    """None: each variant on its default driver."""
    pre_ping: str = "both"
    """``--pre-ping``: "off" or "on" for every cell, or "both": the PRE_PING_SWEEP scenarios
    under off and on, every other scenario off."""
    repeats: int = 1
    """Runs per cell of a REPEATED scenario."""

    def pre_pings(self, scenario: str) -> tuple[bool, ...]:
        """The pre-ping settings *scenario* runs under, in run order."""
        if self.pre_ping == "both":
            return (False, True) if scenario in scenarios.PRE_PING_SWEEP else (False,)
        return (self.pre_ping == "on",)

    def runs_of(self, scenario: str) -> int:
        """How many times each cell of *scenario* runs."""
        return self.repeats if scenario in scenarios.REPEATED else 1

    def settings(self) -> dict[str, Any]:
        settings = asdict(self)
        settings["out"] = str(self.out)
        return settings


THREADS_SKIP = (
    "not run: the lab routers (variants/lab) are async; a threadpool variant's sync "
    "handlers have no lab router, so this scenario would not measure its session"
)


class PitfallRun(Run):
    """``pitfalls.json``: settings, environment, scenario labels, variants, one record per cell."""

    FILE = PITFALLS_FILE
    SCHEMA = SCHEMA
    MODEL = PitfallFile
    CELL = PitfallCell

    @property
    def matrix(self) -> PitfallFile:
        """pitfalls.json as its model reads it (validated by ``load``; a matrix still being
        written is validated at each call)."""
        model = self._model or PitfallFile.model_validate(self.doc)
        assert isinstance(model, PitfallFile), f"{self.FILE} is not a pitfall matrix"
        return model


class PitfallRunner:
    """Runs the configured scenarios against the configured variants into one folder."""

    def __init__(
        self,
        config: PitfallConfig,
        *,
        progress: Callable[[str, int, int], None],
        registry: dict[str, scenarios.Scenario] | None = None,
        shared: dict[str, scenarios.SharedScenario] | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.registry = registry or scenarios.SCENARIOS
        self.shared = shared if shared is not None else ({} if registry else scenarios.SHARED)
        self.servers: dict[str, VariantServer] = {}
        self.wave: list[VariantServer] = []
        """The servers started for one shared scenario's run (stopped after it)."""
        self.pending: dict[str, str] = {}
        """Per variant, why its server must be restarted before its next cell (restarts are
        done together, in parallel, at the end of a scenario's row)."""
        self.timings: dict[str, float] = {}
        """Wall seconds per phase of the run (start-up, restarts, each scenario's row)."""
        self.postgres: database.EmbeddedPostgres | None = None

    def run(self) -> PitfallRun:
        labels = {name: scenarios.label(self.registry[name]) for name in self.config.scenarios}
        lifecycle = RunLifecycle(
            PitfallRun, self.config.out, settings=self.config.settings(),
            fields={"scenarios": labels}, program="sessionbench",
            fails_on=(database.DatabaseError,),
        )  # fmt: skip
        with (
            lifecycle as life,
            database.database_url_or_embedded() as (url, embedded),
            stopping(self._stop_servers),
        ):
            self.postgres = embedded
            life.status = self._run(life.run, url)
        return life.run

    def _stop_servers(self) -> None:
        for server in [*self.servers.values(), *self.wave]:
            server.stop()

    def _run(self, run: PitfallRun, url: DatabaseUrl) -> str:
        config = self.config
        asyncio.run(database.reset(url))
        monitor = integrity.Monitor(url)
        try:
            run.doc["environment"] |= {
                "postgres": monitor.server_info(),
                "database_url": url.redacted,
                "embedded_postgres": self.postgres is not None,
            }
        finally:
            monitor.close()
        total = len(config.variants) * sum(
            config.runs_of(s) * len(config.pre_pings(s)) for s in config.scenarios
        )
        run.doc["timings"] = self.timings
        began = time.monotonic()
        for name in config.variants:
            self.progress(f"starting {name}", 0, total)
            variant = variants.get(name)
            info: dict[str, Any] = {"label": variant.label, "kind": variant.kind, "restarts": 0,
                                    "driver": config.driver or variant.driver}  # fmt: skip
            run.doc["variants"][name] = info
            if variant.threads:  # every cell is skipped (THREADS_SKIP): no server needed
                continue
            env = {
                "SESSIONBENCH_POOL_SIZE": str(config.pool_size),
                "SESSIONBENCH_MAX_OVERFLOW": "0",
                "SESSIONBENCH_POOL_TIMEOUT": str(config.pool_timeout),
                PRE_PING_ENV: "1" if config.pre_ping == "on" else "0",
                **drivers.server_env(name, config.driver),
            }
            self.servers[name] = VariantServer(
                name, url, log_path=config.out / "logs" / f"server-{name}.log", lab=True, env=env
            )
        if any(s not in self.shared or self.postgres is None for s in config.scenarios):
            # Only a shared scenario's servers are its own: nothing else to start for.
            for name, error in _start_all(self.servers).items():
                del self.servers[name]
                run.doc["variants"][name]["start_error"] = error
        self.timings["start_up_s"] = time.monotonic() - began
        run.save()
        done = 0
        for scenario in config.scenarios:
            began = time.monotonic()
            runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
            at: dict[tuple[str, bool], int] = {}
            n = config.runs_of(scenario)
            for repeat in range(n):
                if scenario in self.shared and self.postgres is not None:
                    what = f"{scenario} · every variant at once"
                    self.progress(what + (f" · run {repeat + 1}/{n}" if n > 1 else ""), done, total)
                    cells = self._shared_cells(run, scenario, url)
                else:
                    self._restart_pending(run)
                    cells = []
                    for name in config.variants:
                        for pre_ping in config.pre_pings(scenario):
                            what = f"{scenario} · {name}" + (" · pre-ping on" if pre_ping else "")
                            self.progress(what + (f" · run {repeat + 1}/{n}" if n > 1 else ""),
                                          done + len(cells), total)  # fmt: skip
                            cells.append(self._cell(run, name, scenario, url, pre_ping))
                for cell in cells:
                    done += 1
                    if scenario not in scenarios.REPEATED:
                        run.add_cell(cell)
                        continue
                    key = (cell["variant"], cell["pool_pre_ping"])
                    runs.setdefault(key, []).append(cell)
                    if key not in at:
                        at[key] = len(run.cells)
                        run.add_cell(aggregate(runs[key]))
                    else:
                        run.cells[at[key]] = rounded(aggregate(runs[key]))
                        run.save()
            self.timings[f"{scenario}_s"] = time.monotonic() - began
        self.progress("done", done, total)
        return "complete"

    def _shared_cells(
        self, run: PitfallRun, scenario: str, url: DatabaseUrl
    ) -> list[dict[str, Any]]:
        """One run of a shared scenario: a server started for every variant and setting (in
        parallel), all probed at once, one cell each (in the order the matrix runs cells)."""
        config = self.config
        keys = [(n, p) for n in config.variants for p in config.pre_pings(scenario)]
        cells = {key: _blank(key[0], scenario, key[1]) for key in keys}
        servers: dict[tuple[str, bool], VariantServer] = {}
        for key in keys:
            name, pre_ping = key
            main = self.servers.get(name)
            if variants.get(name).threads:
                cells[key] |= {"outcome": SKIPPED, "summary": THREADS_SKIP}
            elif main is None:
                error = run.doc["variants"][name].get("start_error", "?")
                cells[key]["summary"] = f"server would not start: {error.splitlines()[0]}"
            else:
                log = f"server-{name}-{scenario}-pre-ping-{'on' if pre_ping else 'off'}.log"
                servers[key] = VariantServer(
                    name, url, log_path=config.out / "logs" / log, lab=True,
                    env=main.env | {PRE_PING_ENV: str(int(pre_ping))},
                )  # fmt: skip
        self.wave = list(servers.values())
        began = time.monotonic()
        failed = _start_all(servers)
        self.timings["shared_start_up_s"] = (
            self.timings.get("shared_start_up_s", 0.0) + time.monotonic() - began
        )
        for key, error in failed.items():
            del servers[key]
            cells[key]["summary"] = f"server would not start: {error.splitlines()[0]}"
        targets = {key: self._target(server, url, key[1]) for key, server in servers.items()}
        note = (
            f"one of {len(targets)} servers (every variant, each setting), each started for "
            "this run, through the same PostgreSQL restarts"
        )
        started = time.monotonic()
        found: list[Any] = []
        try:
            if targets:
                found = asyncio.run(_interruptible(self.shared[scenario](list(targets.values()))))
        except Interrupted:
            raise
        except Exception as exc:
            found = [exc] * len(targets)
        seconds = time.monotonic() - started
        self._postgres_up(cells[next(iter(targets))] if targets else {"notes": []})
        for (key, target), outcome in zip(targets.items(), found, strict=True):
            cell = cells[key]
            cell["notes"].append(note)
            _record(cell, outcome)
            cell["seconds"] = seconds
            if not target.server.alive():
                cell |= {"outcome": ERROR, "summary": f"server died: {_last_line(target.server)}"}
                cell["log_tail"] = target.server.log_tail()
        for server in self.wave:
            server.stop()
        self.wave = []
        for name, main in self.servers.items():  # the restarts left their pools stale
            if main.process is not None:
                self.pending.setdefault(name, "PostgreSQL restarted since its last cell")
        return [cells[key] for key in keys]

    def _cell(
        self, run: PitfallRun, name: str, scenario: str, url: DatabaseUrl, pre_ping: bool = False
    ) -> dict[str, Any]:
        cell = _blank(name, scenario, pre_ping)
        if variants.get(name).threads:
            cell |= {"outcome": SKIPPED, "summary": THREADS_SKIP}
            return cell
        server = self.servers.get(name)
        if server is None:
            cell["summary"] = (
                "server would not start: "
                + run.doc["variants"][name].get("start_error", "?").splitlines()[0]
            )
            return cell
        reasons = [self.pending.pop(name)] if name in self.pending else []
        if scenario in scenarios.FRESH_SERVER:
            reasons.append("fresh server")
        if server.env.get(PRE_PING_ENV, "0") != str(int(pre_ping)):
            server.env[PRE_PING_ENV] = str(int(pre_ping))
            reasons.append(f"pool pre-ping {'on' if pre_ping else 'off'}")
        if not server.alive() and not reasons:
            reasons.append("it had died")
        if reasons:
            try:
                self._restart(run, server, ", ".join(reasons))
            except ServerError as exc:
                cell["summary"] = f"server would not restart: {str(exc).splitlines()[0]}"
                return cell
        target = self._target(server, url, pre_ping)
        started = time.monotonic()
        try:
            outcome: Outcome | Exception = asyncio.run(
                _interruptible(self.registry[scenario](target))
            )
        except Interrupted:
            raise
        except Exception as exc:
            outcome = exc
        _record(cell, outcome)
        cell["seconds"] = time.monotonic() - started
        self._postgres_up(cell)
        if not server.alive():
            cell |= {"outcome": ERROR, "summary": f"server died: {_last_line(server)}"}
            cell["log_tail"] = server.log_tail()
        leaked = cell["numbers"].get("leaked_connections")
        if not server.alive():
            problem: str | None = "it had died"
        elif leaked:  # the scenario's own settle already waited: no second wait
            problem = f"{plural(leaked, 'connection')} still checked out"
        else:
            problem = asyncio.run(unhealthy(target))
        if problem:
            cell["notes"].append(f"server restarted after the scenario: {problem}")
            self.pending[name] = problem
        return cell

    def _target(self, server: VariantServer, url: DatabaseUrl, pre_ping: bool) -> Target:
        return Target(
            server=server,
            url=url,
            postgres=self.postgres,
            pool_size=self.config.pool_size,
            pool_timeout=self.config.pool_timeout,
            quick=self.config.mode == "quick",
            soak_seconds=self.config.soak,
            pre_ping=pre_ping,
        )

    def _postgres_up(self, cell: dict[str, Any]) -> None:
        if self.postgres is not None and self.postgres.pid is None:
            self.postgres.start()  # a scenario that stopped it and crashed
            cell["notes"].append("PostgreSQL was down after the scenario and was started again")

    def _restart_pending(self, run: PitfallRun) -> None:
        """Restart, in parallel, every server a cell left damaged (or a shared restart left
        stale), so the next scenario finds it as new; a failed restart is retried (and
        recorded) by that variant's next cell."""
        due = {
            name: self.servers[name]
            for name in self.pending
            if name in self.servers and self.servers[name].process is not None
        }
        if not due:
            return
        began = time.monotonic()
        for name, server in due.items():
            info = run.doc["variants"][name]
            info["restarts"] += 1
            info.setdefault("restart_reasons", []).append(self.pending.pop(name))
            server.stop()
        for name, error in _start_all(due).items():
            run.doc["variants"][name].setdefault("restart_errors", []).append(error)
        self.timings["restarts_s"] = self.timings.get("restarts_s", 0.0) + (
            time.monotonic() - began
        )
        run.save()

    def _restart(self, run: PitfallRun, server: VariantServer, reason: str) -> None:
        info = run.doc["variants"][server.variant.name]
        info["restarts"] += 1
        info.setdefault("restart_reasons", []).append(reason)
        began = time.monotonic()
        server.stop()
        try:
            server.start()
        finally:
            self.timings["restarts_s"] = self.timings.get("restarts_s", 0.0) + (
                time.monotonic() - began
            )


def _blank(name: str, scenario: str, pre_ping: bool) -> dict[str, Any]:
    """A cell before its scenario ran (an error until the scenario says otherwise)."""
    return {
        "variant": name, "scenario": scenario, "pool_pre_ping": pre_ping, "outcome": ERROR,
        "summary": "", "numbers": {}, "notes": [],
    }  # fmt: skip


def _record(cell: dict[str, Any], outcome: Outcome | Exception) -> None:
    """Put a scenario's outcome (or what it raised) into *cell*."""
    if isinstance(outcome, Skip):
        cell |= {"outcome": SKIPPED, "summary": str(outcome)}
    elif isinstance(outcome, TimeoutError):
        cell["summary"] = f"scenario still running after {CELL_TIMEOUT:.0f} s"
    elif isinstance(outcome, Exception):
        text = str(outcome)
        cell["summary"] = f"{type(outcome).__name__}: {text.splitlines()[0] if text else ''}"
    else:
        cell |= {"outcome": outcome.outcome, "summary": outcome.summary}
        cell["numbers"] = outcome.numbers
        if outcome.series is not None:
            cell["series"] = outcome.series


def _start_all(servers: Mapping[K, VariantServer]) -> dict[K, str]:
    """Start *servers*, as many at once as there are CPUs (a start is mostly imports, CPU
    bound); the error of each that would not start."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = dict(zip(servers, pool.map(_start, servers.values()), strict=True))
    return {key: error for key, error in errors.items() if error is not None}


async def _interruptible(scenario: Coroutine[Any, Any, T]) -> T:
    """Run *scenario* with a time limit; Ctrl-C / SIGTERM cancel it and raise Interrupted.

    A signal handler that raises inside a running event loop can land in any task (and be
    swallowed there), so while a scenario runs the loop itself handles the signals.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    caught: list[str] = []

    def interrupt(sig: signal.Signals) -> None:
        caught.append(sig.name)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig)
    try:
        return await asyncio.wait_for(scenario, CELL_TIMEOUT)
    except asyncio.CancelledError:
        if caught:
            raise Interrupted(caught[0]) from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, raise_interrupted)  # removing left the default behind


async def unhealthy(target: Target) -> str | None:
    """Why the server cannot serve the next scenario as new (None: it can)."""
    try:
        _, stats = await settle(target, 2.0)
    except Skip:
        stats = {"checked_out": 0}
    except Exception as exc:
        return f"/lab/pool failed: {type(exc).__name__}"
    if stats["checked_out"]:
        return f"{plural(stats['checked_out'], 'connection')} still checked out"
    status = await responsive(target, within=target.pool_timeout + 2)
    return None if status == "200" else f"GET /todos/1 answered {status}"


def _start(server: VariantServer) -> str | None:
    """Start *server*; the error, or None once it answers."""
    try:
        server.start()
    except ServerError as exc:
        return str(exc)
    return None


def _last_line(server: VariantServer) -> str:
    lines = [line for line in server.log_tail(30).splitlines() if line.strip()]
    return lines[-1] if lines else "(empty log)"
