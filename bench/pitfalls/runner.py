"""Run the pitfall matrix: every selected variant as its own server, every scenario against each.

Order of work: one PostgreSQL (embedded, or ``DATABASE_URL``), reset to the seed; every
variant started as a ``sessionbench serve`` child with the same pool (a short pool timeout,
so exhaustion shows in seconds, not minutes); then scenario by scenario, each variant in
turn. The pool's pre-ping is a setting of the matrix (``--pre-ping``): by default the
scenarios in ``scenarios.PRE_PING_SWEEP`` run once with it off and once on (the server
restarted with the other setting), every other scenario with it off; each cell records the
setting it ran under (``pool_pre_ping``). Servers start one per CPU at a time; beside each
variant's server a standby with pre-ping on starts too and idles (an empty pool) until the
first restart cell with pre-ping on, which then needs no restart of its own. A scenario in
``scenarios.REPEATED`` runs ``repeats`` times per cell, interleaved across variants (A B C A
B C …), and its cell is the runs folded into the worst outcome with its count
(``bench.pitfalls.repeats``). After every cell ``pitfalls.json`` is rewritten atomically. A
variant whose server died, or was left with connections checked out or not answering, is
restarted before its next cell (the cell says so), so one scenario's damage does not leak
into the next. A scenario that crashes records ``error`` with its message and the run goes
on. Ctrl-C or SIGTERM: every child stopped, status ``incomplete``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import variants
from bench.common import database, drivers, integrity
from bench.common.processes import Interrupted, ignore_signals, raise_interrupted
from bench.common.result_files import PitfallFile
from bench.common.results import Run, environment, rounded
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
PITFALLS_FILE = "pitfalls.json"
CELL_TIMEOUT = 120.0  # s: a scenario still running after this is recorded as an error


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


class PitfallRunner:
    """Runs the configured scenarios against the configured variants into one folder."""

    def __init__(
        self,
        config: PitfallConfig,
        *,
        progress: Callable[[str, int, int], None],
        registry: dict[str, scenarios.Scenario] | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.registry = registry or scenarios.SCENARIOS
        self.servers: dict[str, VariantServer] = {}
        self.standby: dict[str, VariantServer] = {}
        """Per variant, a server started at the run's start with pre-ping on, left idle (its
        pool empty: connections open on first use) until the first FRESH_SERVER cell with
        pre-ping on takes it instead of restarting the variant's server."""
        self.postgres: database.EmbeddedPostgres | None = None

    def run(self) -> PitfallRun:
        previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
        labels = {name: scenarios.label(self.registry[name]) for name in self.config.scenarios}
        run = PitfallRun.create(
            self.config.out, settings=self.config.settings(), env=environment(), scenarios=labels
        )
        run.doc["command"] = ["sessionbench", *sys.argv[1:]]
        status = "incomplete"
        try:
            with database.database_url_or_embedded() as (url, embedded):
                self.postgres = embedded
                try:
                    status = self._run(run, url)
                finally:
                    ignore_signals()  # a second Ctrl-C must not leave children behind
                    for server in [*self.servers.values(), *self.standby.values()]:
                        server.stop()
        except Interrupted as exc:
            run.doc["interrupted_by"] = str(exc)
        except database.DatabaseError as exc:
            run.doc["error"] = str(exc)
            status = "failed"
            raise
        finally:
            ignore_signals()
            run.finish(status)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return run

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
        for name in config.variants:
            self.progress(f"starting {name}", 0, total)
            variant = variants.get(name)
            info: dict[str, Any] = {"label": variant.label, "kind": variant.kind, "restarts": 0,
                                    "driver": config.driver or variant.driver}  # fmt: skip
            if variant.threads:  # every cell is skipped (THREADS_SKIP): no server needed
                run.doc["variants"][name] = info
                continue
            env = {
                "SESSIONBENCH_POOL_SIZE": str(config.pool_size),
                "SESSIONBENCH_MAX_OVERFLOW": "0",
                "SESSIONBENCH_POOL_TIMEOUT": str(config.pool_timeout),
                PRE_PING_ENV: "1" if config.pre_ping == "on" else "0",
                **drivers.server_env(name, config.driver),
            }
            logs = config.out / "logs"
            self.servers[name] = VariantServer(
                name, url, log_path=logs / f"server-{name}.log", lab=True, env=env
            )
            if any(
                True in config.pre_pings(s) for s in scenarios.FRESH_SERVER & {*config.scenarios}
            ):
                self.standby[name] = VariantServer(
                    name, url, log_path=logs / f"server-{name}-standby.log", lab=True,
                    env=env | {PRE_PING_ENV: "1"},
                )  # fmt: skip
            run.doc["variants"][name] = info
        # Two waves (a variant's first start may build its environment): every variant's
        # server at once, then the standbys. The start is mostly imports, CPU-bound.
        for wave in (self.servers, self.standby):
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                failed = dict(zip(wave, pool.map(_start, wave.values()), strict=True))
            for name, error in failed.items():
                if error is not None:
                    del wave[name]
                    if wave is self.servers:
                        run.doc["variants"][name]["start_error"] = error
        run.save()
        done = 0
        for scenario in config.scenarios:
            runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
            at: dict[tuple[str, bool], int] = {}
            n = config.runs_of(scenario)
            for repeat in range(n):
                for name in config.variants:
                    for pre_ping in config.pre_pings(scenario):
                        what = f"{scenario} · {name}" + (" · pre-ping on" if pre_ping else "")
                        self.progress(what + (f" · run {repeat + 1}/{n}" if n > 1 else ""),
                                      done, total)  # fmt: skip
                        cell = self._cell(run, name, scenario, url, pre_ping)
                        done += 1
                        if scenario not in scenarios.REPEATED:
                            run.add_cell(cell)
                            continue
                        key = (name, pre_ping)
                        runs.setdefault(key, []).append(cell)
                        if key not in at:
                            at[key] = len(run.cells)
                            run.add_cell(aggregate(runs[key]))
                        else:
                            run.cells[at[key]] = rounded(aggregate(runs[key]))
                            run.save()
        self.progress("done", done, total)
        return "complete"

    def _cell(
        self, run: PitfallRun, name: str, scenario: str, url: DatabaseUrl, pre_ping: bool = False
    ) -> dict[str, Any]:
        cell: dict[str, Any] = {
            "variant": name, "scenario": scenario, "pool_pre_ping": pre_ping, "outcome": ERROR,
            "summary": "", "numbers": {}, "notes": [],
        }  # fmt: skip
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
        standby = self.standby.get(name)
        if pre_ping and scenario in scenarios.FRESH_SERVER and standby and standby.alive():
            server.stop()  # a fresh server with pre-ping on is waiting: no restart needed
            self.servers[name] = server = self.standby.pop(name)
            cell["notes"].append(
                "on a server started with pre-ping on at the run's start, idle since"
            )
        reasons = (
            ["fresh server"] if scenario in scenarios.FRESH_SERVER and server is not standby else []
        )
        if server.env.get(PRE_PING_ENV, "0") != str(int(pre_ping)):
            server.env[PRE_PING_ENV] = str(int(pre_ping))
            reasons.append(f"pool pre-ping {'on' if pre_ping else 'off'}")
        if not server.alive():
            reasons.append("it had died")
        if reasons:
            try:
                self._restart(run, server, ", ".join(reasons))
            except ServerError as exc:
                cell["summary"] = f"server would not restart: {str(exc).splitlines()[0]}"
                return cell
        target = Target(
            server=server,
            url=url,
            postgres=self.postgres,
            pool_size=self.config.pool_size,
            pool_timeout=self.config.pool_timeout,
            quick=self.config.mode == "quick",
            soak_seconds=self.config.soak,
            pre_ping=pre_ping,
        )
        started = time.monotonic()
        try:
            outcome = asyncio.run(_interruptible(self.registry[scenario](target)))
        except Interrupted:
            raise
        except Skip as exc:
            cell |= {"outcome": SKIPPED, "summary": str(exc)}
        except TimeoutError:
            cell["summary"] = f"scenario still running after {CELL_TIMEOUT:.0f} s"
        except Exception as exc:
            cell["summary"] = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
        else:
            cell |= {"outcome": outcome.outcome, "summary": outcome.summary}
            cell["numbers"] = outcome.numbers
            if outcome.series is not None:
                cell["series"] = outcome.series
        cell["seconds"] = time.monotonic() - started
        if self.postgres is not None and self.postgres.pid is None:
            self.postgres.start()  # a scenario that stopped it and crashed
            cell["notes"].append("PostgreSQL was down after the scenario and was started again")
        if not server.alive():
            cell |= {"outcome": ERROR, "summary": f"server died: {_last_line(server)}"}
            cell["log_tail"] = server.log_tail()
        problem = None if not server.alive() else asyncio.run(unhealthy(target))
        if not server.alive() or problem:
            reason = problem or "it had died"
            cell["notes"].append(f"server restarted after the scenario: {reason}")
            try:
                self._restart(run, server, reason)
            except ServerError as exc:
                cell["notes"].append(f"restart failed: {str(exc).splitlines()[0]}")
        return cell

    def _restart(self, run: PitfallRun, server: VariantServer, reason: str) -> None:
        info = run.doc["variants"][server.variant.name]
        info["restarts"] += 1
        info.setdefault("restart_reasons", []).append(reason)
        server.stop()
        server.start()


async def _interruptible(scenario: Coroutine[Any, Any, Outcome]) -> Outcome:
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
