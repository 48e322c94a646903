"""``sessionbench run``: the load-benchmark matrix (variants × scenarios × users × trials).

Order of work:

1. PostgreSQL (embedded, pinned with locust away from the server's core; or
   ``DATABASE_URL``); every selected variant started as its own server, pinned to the
   server core, and checked with ``verify`` (a variant that fails is reported and skipped).
2. Cells, trials interleaved across variants (round r starts at variant r mod n, so
   no variant always runs first): reset + seed, locust in its own process (headless,
   FastHttpUser) with the recorder plug-in, CPU snapshots at the edges of the window
   the locust master set (``start.json``), the variant's connections sampled during it,
   the master's merged ``result.json`` read afterwards, integrity checks, validity rules
   (failures of any phase invalidate) and warnings (Little's law, censored tails).
   ``run.json`` is rewritten after every cell.
3. A variant server that dies: its cell is marked failed with the server's last log
   lines; it is restarted for its next cell. The database going away is handled the same
   way: the cell fails with the reason, an embedded PostgreSQL is restarted and reseeded
   and every server restarted; an external one still down after 15 s ends the run (exit 1).
   A server whose backends still hold a transaction (or run a statement) 2 s after its
   load stopped (a stall) is restarted before any other cell runs, so its locks cannot
   spoil the next cells; backends that outlive it are terminated; the cell records it
   (``lingering_transactions``) and is invalid, or, when the server had also stopped
   answering, a ``stall`` with what held what (``stall_record``). Before each reset no
   server of the run may hold a transaction: stray ones are terminated, else the cell
   fails saying so.
   Ctrl-C or SIGTERM: every child stopped, finished cells kept, the run marked incomplete
   (``bench.common.lifecycle``, as in ``pitfalls`` and ``cost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import variants
from bench.common import (
    cpu,
    database,
    drivers,
    environments,
    histograms,
    integrity,
    metrics,
    processes,
    stats,
    verify,
)
from bench.common.co_record import CoRecord
from bench.common.lifecycle import RunLifecycle, stopping
from bench.common.results import Run
from bench.common.server import GC_FREEZE_ENV, ServerError, VariantServer, free_port
from bench.load import coschedule, distributed, protocol, tails
from bench.load import follow as follow_mode
from bench.load.scenarios import SCENARIOS
from bench.pool import stats as pool_stats
from variants.settings import DatabaseUrl

LOCUST_CPU_LIMIT = 90.0  # % of one core: above it the load generator is the bottleneck
CORE_BUSY_LIMIT = 95.0  # % busy on a non-server core: it is saturated
PHASES = ("warmup", "window", "stop")
STOP_TIMEOUT = 10  # s locust gives users to finish their task (so writes are acknowledged)
LINGER_GRACE = 2.0  # s a server's backends get to end their transactions after the load stops
STALL_QUIET = 1.0  # s without an answer at the window's end that make lingering a stall
# s an external database that went away mid-run gets to come back before the run ends
DATABASE_WAIT = float(os.environ.get("SESSIONBENCH_DATABASE_WAIT", "15"))


@dataclass(frozen=True)
class Series:
    """One measured line: a variant served with one value of every axis (one server)."""

    name: str
    variant: str
    pool_size: int
    workers: int
    server: str
    pool_queue: str = "sqlalchemy"
    driver: str = "asyncpg"


@dataclass(frozen=True)
class RunConfig:
    mode: str
    variants: list[str]
    scenarios: list[str]
    users: list[int]
    trials: int
    duration: float
    warmup: float
    pool_sizes: list[int]
    max_overflow: int
    out: Path
    workers: list[int] = field(default_factory=lambda: [1])
    asgi_servers: list[str] = field(default_factory=lambda: ["uvicorn"])
    locust_processes: int = 1
    expect_workers: int = 0
    """>0: locust runs distributed (bench/load/distributed.py): a master here, N workers."""
    master_bind: str = distributed.DEFAULT_BIND
    master_port: int = distributed.DEFAULT_PORT
    remote: dict[str, str] = field(default_factory=dict)
    """variant -> URL of a server started elsewhere (bench.common.metrics); CPU from /metrics."""
    pool_queues: list[str] = field(default_factory=lambda: ["sqlalchemy"])
    drivers: list[str] | None = None
    """None: each variant on its default driver; else each on those of these it supports."""
    pool_stats: bool = False
    """Servers record pool wait/hold/barging (variants/pool_stats.py) into each cell; off by
    default: it costs ~1-3 % of a request's CPU (README), so req/s comes from runs without."""
    co_anchors: list[str] = field(default_factory=list)
    """Series every other is co-scheduled with (bench/load/coschedule.py); empty: no such pass."""
    co_windows: int = 6
    co_window: float = 2.0
    co_warmup: float = 2.0
    co_rounds: int = 1
    co_group: str = "pairs"
    co_cells: list[str] = field(default_factory=list)
    co_budget: float = 0.0
    co_max_steal: float = coschedule.STEAL_LIMIT
    co_min_busy: float = 100 * coschedule.SATURATED
    gc_freeze: bool = True
    """Servers freeze their startup heap before serving (bench/common/server.py:
    ``GC_FREEZE_ENV``); False: the interpreter's default collector."""
    solo_scenarios: list[str] | None = None
    """The scenarios with solo cells (None: every scenario of the run)."""

    def co_settings(self) -> coschedule.CoSettings | None:
        if not self.co_anchors:
            return None
        return coschedule.CoSettings(
            anchors=self.co_anchors, windows=self.co_windows, window=self.co_window,
            warmup=self.co_warmup, rounds=self.co_rounds, group=self.co_group,
            cells=tuple(self.co_cells), budget=self.co_budget,
            steal_limit=self.co_max_steal, saturated=self.co_min_busy / 100,
        )  # fmt: skip

    def co_schedule(self) -> list[tuple[int, str, int, tuple[str, ...]]]:
        co = self.co_settings()
        if co is None:
            return []
        names = [s.name for s in self.series()]
        return list(coschedule.schedule(names, self.scenarios, self.users, co))

    follow: float = 0.0
    """>0: follow mode (bench/load/follow.py): every request started in the window is followed
    to its end, at most this many s after the window; 0: off."""
    pool_timeout: float = follow_mode.DEFAULT_POOL_TIMEOUT
    """The servers' pool_timeout (SESSIONBENCH_POOL_TIMEOUT): a 503 after it is a timeout."""

    def settings(self) -> dict[str, Any]:
        settings = asdict(self)
        settings["out"] = str(self.out)
        series = self.series()
        settings["series"] = [s.name for s in series]
        settings["driver_settings"] = drivers.settings(sorted({s.driver for s in series}))
        return settings

    def series(self) -> list[Series]:
        """Every variant × axis value; an axis with several values is named in the series."""
        axes = product(self.pool_sizes, self.workers, self.asgi_servers, self.pool_queues)
        pairs, _ = drivers.select(self.variants, self.drivers, named=False)
        several = self.drivers is not None and len(self.drivers) > 1
        return [
            Series(
                name=variant
                + (f"+pool{pool}" if len(self.pool_sizes) > 1 else "")
                + (f"+w{workers}" if len(self.workers) > 1 else "")
                + (f"+{server}" if len(self.asgi_servers) > 1 else "")
                + (f"+{queue}" if len(self.pool_queues) > 1 else "")
                + (f"+{driver}" if several else ""),
                variant=variant,
                pool_size=pool,
                workers=workers,
                server=server,
                pool_queue=queue,
                driver=driver,
            )
            for pool, workers, server, queue in axes
            for variant, driver in pairs
        ]

    def cells(self) -> Iterator[tuple[int, str, int, str]]:
        """(trial, scenario, users, series) in run order: trials interleaved across series.
        Calibration series (a known extra cost) have no solo cells: they serve the
        co-scheduled pass only."""
        names = [s.name for s in self.series() if _kind(s.variant) != "calibration"]
        n = len(names)
        solo = [
            s for s in self.scenarios if self.solo_scenarios is None or s in self.solo_scenarios
        ]
        for trial in range(1, self.trials + 1):
            for scenario in solo:
                for users in self.users:
                    for i in range(n):
                        yield trial, scenario, users, names[(trial - 1 + i) % n]

    @property
    def cell_count(self) -> int:
        """Solo cells plus co-scheduled groups (each one step of the progress bar)."""
        return len(list(self.cells())) + len(self.co_schedule())


@dataclass
class Placement:
    """Which cores each process group may use (recorded in run.json)."""

    server: set[int]
    others: set[int]
    postgres: str = "unpinned"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_cores": sorted(self.server),
            "locust_cores": sorted(self.others),
            "runner_cores": sorted(self.others),
            "postgres": self.postgres,
            "notes": self.notes,
        }


class ConfigError(ValueError):
    """The configured run cannot work here (e.g. more pooled connections than PostgreSQL allows)."""


class Runner:
    """Runs one configured matrix into one run folder."""

    def __init__(self, config: RunConfig, *, progress: Callable[[str, int, int], None]) -> None:
        self.config = config
        self.progress = progress
        self.servers: dict[str, VariantServer | metrics.RemoteServer] = {}  # by series name
        self.series: dict[str, Series] = {}
        self.locust: subprocess.Popen[bytes] | None = None
        self.notice = ""  # what happened after the last cell, shown on the next progress line

    def run(self) -> Run:
        config = self.config
        lifecycle = RunLifecycle(
            Run, config.out, settings=config.settings(), program="sessionbench",
            fails_on=(database.DatabaseError, ConfigError),
        )  # fmt: skip
        with (
            lifecycle as life,
            database.database_url_or_embedded() as (url, embedded),
            stopping(self._stop_children),  # servers and locust go before PostgreSQL
        ):
            life.status = self._run(life.run, url, embedded)
        return life.run

    def _run(self, run: Run, url: DatabaseUrl, embedded: database.EmbeddedPostgres | None) -> str:
        config = self.config
        placement = Placement(*cpu.split_cores())
        if config.expect_workers:
            placement.notes.append(
                f"locust master on {config.master_bind}:{config.master_port}, "
                f"{config.expect_workers} workers on other processes or hosts"
            )
        for variant, remote_url in config.remote.items():
            placement.notes.append(f"{variant}: remote server {remote_url}, not pinned")
        if placement.server == placement.others:
            placement.notes.append("one core only: server, PostgreSQL and locust share it")
        if embedded is not None and embedded.pid is not None:
            cpu.pin(cpu.tree_pids(embedded.pid), placement.others)
            placement.postgres = f"embedded, cores {sorted(placement.others)}"
        else:
            placement.postgres = f"external {url.redacted}, not pinned"
        cpu.pin([os.getpid()], placement.others)
        monitor = integrity.Monitor(url)
        try:
            info = monitor.server_info()
            run.doc["environment"] |= {
                "postgres": info,
                "database_url": url.redacted,
                "embedded_postgres": embedded is not None,
                "placement": placement.as_dict(),
                "statement_counts": "pg_stat_statements" if monitor.has_statements else None,
            }
            run.save()
            shortfall = _connection_shortfall(config, info)
            if shortfall:
                raise ConfigError(shortfall)
            ready = self._start_variants(run, url, placement)
            if not ready:
                return "failed"
            cells = [cell for cell in config.cells() if cell[3] in ready]
            done = 0
            for trial, scenario, users, name in cells:
                self.progress(
                    f"{name} · {scenario} · {users} users · trial {trial}{self.notice}",
                    done,
                    len(cells),
                )
                self.notice = ""
                try:
                    cell = self._cell(
                        done, name, scenario, users, trial, monitor, placement, embedded
                    )
                    self._settle(name, cell, monitor)
                except Exception as exc:
                    reason = database.lost(exc, url, embedded)
                    if reason is None:
                        raise
                    monitor = self._database_lost(run, reason, url, embedded, monitor, placement)
                    cell = {"variant": name, "scenario": scenario, "users": users,
                            "trial": trial, "status": "failed", "reasons": [reason]}  # fmt: skip
                cell["order"] = done
                run.add_cell(cell)
                done += 1
            self._co_pass(run, url, embedded, placement, ready, done)
            self.progress("done", self.config.cell_count, self.config.cell_count)
        finally:
            monitor.close()
        return "complete"

    def _co_pass(
        self,
        run: Run,
        url: DatabaseUrl,
        embedded: database.EmbeddedPostgres | None,
        placement: Placement,
        ready: list[str],
        done: int,
    ) -> None:
        """The co-scheduled pass (bench/load/coschedule.py): solo servers stopped, one server
        per series on its own database, groups loaded together; records in run.json."""
        config = self.config
        settings = config.co_settings()
        if settings is None:
            return
        plan = [g for g in config.co_schedule() if all(n in ready for n in g[3])]
        record = CoRecord(settings=settings.record(), groups=[], series=[])
        _save_co(run, record)
        for server in self.servers.values():
            server.stop()
        co = coschedule.CoPass(
            settings, config.out, placement.server, placement.others,
            server_env=lambda name: self._server_env(self.series[name]),
            series_variant={n: s.variant for n, s in self.series.items()},
            pool_limits={n: (s.pool_size + config.max_overflow) * s.workers
                         for n, s in self.series.items()},
            pg_pid=embedded.pid if embedded is not None else None,
        )  # fmt: skip
        try:
            names = sorted({n for g in plan for n in g[3]}, key=ready.index)
            self.progress("co-scheduled pass: starting one server per series", done,
                          config.cell_count)  # fmt: skip
            began = time.monotonic()
            started = co.start(url, names)
            record.series = started
            total = config.cell_count
            for i, (round_, scenario, users, group) in enumerate(plan):
                if not all(n in started for n in group):
                    continue
                self.progress(
                    f"co-scheduled {' + '.join(group)} · {scenario} · {users} users · "
                    f"round {round_}",
                    done + i,
                    total,
                )
                record.groups.append(co.group(i, round_, scenario, users, group, look=1))
                _save_co(run, record)
            self._co_looks(run, record, co, plan, started, began, done + len(plan))
        finally:
            co.stop(url)

    def _co_looks(
        self,
        run: Run,
        record: CoRecord,
        co: coschedule.CoPass,
        plan: list[tuple[int, str, int, tuple[str, ...]]],
        started: list[str],
        began: float,
        done: int,
    ) -> None:
        """Load the groups with an unresolved comparison again, look after look, while the
        pass's budget lasts (a group is started only if it can end within it)."""
        settings = co.settings
        groups = record.groups
        look = 1
        while settings.budget > 0:
            look += 1
            todo = [
                g for g in coschedule.unresolved(record, plan)
                if all(n in started for n in g[2])
            ]  # fmt: skip
            spent = time.monotonic() - began
            each = spent / max(1, len(groups))  # mean time per group so far, start-up included
            left = settings.budget - spent
            if not todo or left < each:
                break
            todo = coschedule.by_cell_rounds(todo)[: int(left // each)]
            for k, (scenario, users, group) in enumerate(todo):
                self.progress(
                    f"co-scheduled look {look}: {' + '.join(group)} · {scenario} · {users} "
                    f"users ({len(todo)} unresolved groups, {left:.0f} s of budget left)",
                    done + k,
                    done + len(todo),
                )
                index = 1 + max((g.order for g in groups), default=len(plan))
                groups.append(co.group(index, 1, scenario, users, group, look=look))
                _save_co(run, record)
            done += len(todo)

    def _database_lost(
        self,
        run: Run,
        reason: str,
        url: DatabaseUrl,
        embedded: database.EmbeddedPostgres | None,
        monitor: integrity.Monitor,
        placement: Placement,
    ) -> integrity.Monitor:
        """Bring the database back (restart + reseed an embedded one; wait for an external
        one, else DatabaseError naming it), restart every server, return a new monitor."""
        if self.locust is not None:
            processes.stop(self.locust)
            self.locust = None
        if embedded is not None:
            embedded.restart()
            if embedded.pid is not None:
                cpu.pin(cpu.tree_pids(embedded.pid), placement.others)
        else:
            deadline = time.monotonic() + DATABASE_WAIT
            while (problem := database.unreachable(url)) and time.monotonic() < deadline:
                time.sleep(1)
            if problem:
                raise database.DatabaseError(f"the database went away and stays down: {problem}")
        monitor.close()
        asyncio.run(database.reset(url))
        for server in self.servers.values():
            server.stop()
            with contextlib.suppress(ServerError):  # the next cell tries again, and says so
                server.start()
        run.doc.setdefault("database_restarts", []).append(
            {"cell": len(run.cells), "reason": reason}
        )
        return integrity.Monitor(url)

    def _settle(self, name: str, cell: dict[str, Any], monitor: integrity.Monitor) -> None:
        """After a cell: a server whose backends still hold a transaction (or run a statement)
        :data:`LINGER_GRACE` s after the load stopped is restarted, so its locks go before any
        other cell runs; backends that outlive its process are terminated. All recorded."""
        server = self.servers[name]
        app = [server.app_name]
        backends = _still_open(lambda: monitor.open_transactions(app), LINGER_GRACE)
        if not backends:
            return
        record = integrity.lingering_summary(backends)
        states = ", ".join(f"{n} {state}" for state, n in record["states"].items())
        remote = isinstance(server, metrics.RemoteServer)
        what = "remote server" if remote else "server restarted"
        note = (
            f"{what}: left {record['count']} transactions open ({states}; oldest "
            f"{record['max_age_s']:.1f} s, {LINGER_GRACE:g} s after the load stopped)"
        )
        left = backends
        if not remote:  # its PID: its connections close, PostgreSQL releases its locks
            server.stop(timeout=5)
            left = _still_open(lambda: monitor.open_transactions(app), LINGER_GRACE)
        if left:
            record["terminated"] = monitor.terminate(b.pid for b in left)
            note += f"; {record['terminated']} terminated with pg_terminate_backend"
        record["restarted"] = not remote
        cell["lingering_transactions"] = record
        cell["reasons"].insert(0, note)
        failed = cell["status"] == "failed"  # e.g. the server died: no stall to judge
        stall = None if failed else stall_record(cell, record, self.config.duration)
        if stall is not None:  # a result (what held what), not missing data
            cell["stall"] = stall
            cell["status"] = "stall"
        elif cell["status"] == "ok":
            cell["status"] = "invalid"
        self.notice = f" · after {name}: {note.split(' (')[0]}"
        if not remote:
            with contextlib.suppress(ServerError):  # the next cell tries again, and says so
                server.start()

    def _stray_transactions(self, monitor: integrity.Monitor) -> str | None:
        """Before the reset: no server of this run may hold a transaction (their locks would
        stall the reset or the cell's writes). Stray ones are terminated; the one-line
        reason if some survive (None: the database is clean)."""
        names = [server.app_name for server in self.servers.values()]
        stray = _still_open(lambda: monitor.open_transactions(names), LINGER_GRACE)
        if not stray:
            return None
        monitor.terminate(b.pid for b in stray)
        left = _still_open(lambda: monitor.open_transactions(names), LINGER_GRACE)
        if not left:
            return None
        owners = ", ".join(sorted({b.app_name for b in left}))
        return (
            f"database not clean before the reset: {len(left)} transactions of {owners} still "
            "open after pg_terminate_backend"
        )

    def _server(
        self, series: Series, url: DatabaseUrl, placement: Placement
    ) -> VariantServer | metrics.RemoteServer:
        if series.variant in self.config.remote:
            return metrics.RemoteServer(series.variant, self.config.remote[series.variant])
        return VariantServer(
            series.variant,
            url,
            log_path=self.config.out / "logs" / f"server-{series.name}.log",
            cpus=placement.server,
            env=self._server_env(series),
            workers=series.workers,
            server=series.server,
        )

    def _server_env(self, series: Series) -> dict[str, str]:
        return {
            "SESSIONBENCH_POOL_SIZE": str(series.pool_size),
            "SESSIONBENCH_MAX_OVERFLOW": str(self.config.max_overflow),
            "SESSIONBENCH_POOL_QUEUE": series.pool_queue,
            GC_FREEZE_ENV: "1" if self.config.gc_freeze else "0",
            drivers.DRIVER_ENV: series.driver,
            drivers.EVIDENCE_ENV: str(self._driver_dir(series.name)),
            **(
                {pool_stats.ENV: str(self._pool_dir(series.name))} if self.config.pool_stats else {}
            ),
        }

    def _pool_dir(self, name: str) -> Path:
        return self.config.out / "raw" / "pool-stats" / name

    def _driver_dir(self, name: str) -> Path:
        return self.config.out / "logs" / "drivers" / name  # raw/ holds one folder per cell

    def _start_variants(self, run: Run, url: DatabaseUrl, placement: Placement) -> list[str]:
        ready = []
        asyncio.run(database.ensure_schema(url))
        for series in self.config.series():
            name = series.name
            self.progress(f"starting and verifying {name}", 0, self.config.cell_count)
            server = self._server(series, url, placement)
            variant = variants.get(series.variant)
            info: dict[str, Any] = {
                "label": variant.label,
                "kind": variant.kind,
                **{k: v for k, v in asdict(series).items() if k != "name"},
            }
            try:
                server.start()
            except ServerError as exc:
                info["verify"] = {"passed": False, "failures": [f"start-up: {exc}"]}
                run.doc["variants"][name] = info
                continue
            self.servers[name] = server
            self.series[name] = series
            info["packages"] = environments.package_versions(variant)  # its interpreter's
            if variant.threads:  # next to pool_size: how many handlers can hold a connection
                info["threadpool_tokens"] = environments.threadpool_tokens(variant)
            outcomes = verify.verify(server.base_url, database=url)
            failures = [f"{o.check}: {o.error}" for o in outcomes if not o.ok]
            info["verify"] = {"passed": not failures, "checks": len(outcomes), "failures": failures}
            run.doc["variants"][name] = info
            if failures and variant.commits_after_response:
                # Its contract failure is the finding (a 2xx before the commit): measured anyway.
                info["verify"]["finding"] = "fails the contract: answers 2xx before it commits"
                ready.append(name)
            elif failures:
                server.stop()
                del self.servers[name]
            else:
                ready.append(name)
        run.save()
        return ready

    def _cell(
        self,
        index: int,
        name: str,
        scenario: str,
        users: int,
        trial: int,
        monitor: integrity.Monitor,
        placement: Placement,
        pg: database.EmbeddedPostgres | None,
    ) -> dict[str, Any]:
        config = self.config
        cell: dict[str, Any] = {
            "variant": name, "scenario": scenario, "users": users, "trial": trial,
            "status": "failed", "reasons": [],
        }  # fmt: skip
        server = self.servers[name]
        series = self.series[name]
        cell["driver"] = series.driver
        if not server.alive():
            try:
                server.start()
            except ServerError as exc:
                cell["reasons"].append(f"server would not restart: {exc}")
                return cell
        raw = config.out / "raw" / f"{index:04d}-{name}-{scenario}-u{users}-t{trial}"
        raw.mkdir(parents=True, exist_ok=True)
        unclean = self._stray_transactions(monitor)
        if unclean:
            self.notice = f" · {unclean}"
            cell["reasons"].append(unclean)
            return cell
        monitor.prepare()
        remote = isinstance(server, metrics.RemoteServer)
        groups = {} if remote else {"server": [server.pid or 0]}
        if pg is not None and pg.pid:  # an external server's CPU cannot be seen from here
            groups["postgres"] = [pg.pid]
        locustfile = SCENARIOS[scenario].locustfile
        locust = self._start_locust(locustfile, server.base_url, users, raw, placement)
        groups["locust"] = [locust.pid]
        try:
            wait = 20 + (distributed.WORKER_WAIT if config.expect_workers else 0)
            start_file = _wait_for_start(raw, locust, timeout=wait)
        except RuntimeError as exc:
            processes.stop(locust)
            if config.expect_workers and "waiting for workers" in str(exc):
                raise ConfigError(
                    f"fewer than {config.expect_workers} locust workers connected to "
                    f"{config.master_bind}:{config.master_port} within "
                    f"{distributed.WORKER_WAIT:.0f} s (start `sessionbench worker --master "
                    "HOST:PORT` on the load hosts); the cells run so far are kept"
                ) from exc
            cell["reasons"].append(str(exc))
            return cell
        window = start_file["window"]  # the master's: every locust process measures it
        _sleep_until(window[0])
        before = cpu.Snapshot.take(groups)
        remote_cpu = [metrics.read_cpu(server.metrics)] if remote else []  # type: ignore[union-attr]
        recorders = pool_stats.reset(self._pool_dir(name), server.pid)
        peak = _sample_until(window[1], lambda: monitor.connections(server.app_name))
        after = cpu.Snapshot.take(groups)
        if remote:
            remote_cpu.append(metrics.read_cpu(server.metrics))  # type: ignore[union-attr]
        cell |= pool_stats.collect(self._pool_dir(name), recorders)
        try:
            locust.wait(config.warmup + config.duration + config.follow + STOP_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            processes.stop(locust)
            cell["reasons"].append("locust did not finish in time")
        self.locust = None
        if not server.alive():
            cell["reasons"].append(f"server died:\n{server.log_tail()}")
            return cell
        recorded = _read_result(raw)
        if recorded is None:
            cell["reasons"].append(
                f"locust wrote no results:\n{processes.tail(raw / 'locust.log')}"
            )
            return cell
        merged = histograms.merge([recorded["histogram"]])
        censored = histograms.merge([recorded["censored_histogram"]])
        counts: Counter[str] = Counter(recorded["counts"])
        by_phase = {p: recorded["failures_by_phase"].get(p, {}) for p in PHASES}
        per_user = recorded["per_user"]
        unsure = set(recorded["unsure"])
        patched = {i: t for i, t in recorded["patched"].items() if i not in unsure}
        observed = monitor.observe(server.app_name, peak_connections=peak, todo_ids=patched)
        checks = integrity.check_cell(
            counts,
            observed,
            seed_rows=monitor.seed_rows,
            pool_limit=(series.pool_size + config.max_overflow) * series.workers,
            orm=variants.get(series.variant).orm,
            patched=patched,
        )
        spent = before.until(after)
        elapsed = window[1] - window[0]
        requests = merged.get_total_count()
        total_requests = sum(counts.values())
        tail = tails.censoring(merged, censored)
        rps = requests / elapsed
        cell |= {
            "requests": requests,
            "errors": sum(by_phase["window"].values()),
            "rps": rps,
            **tail,
            "littles_law": tails.littles_law(users, rps, tail["latency_us"]["mean"]),
            "fairness": stats.fairness(per_user, users),
            "cpu_us_per_request": {
                group: (seconds * 1e6 / requests if requests else None)
                for group, seconds in spent.processes.items()
            },
            "cpu_percent": {g: 100 * s / elapsed for g, s in spent.processes.items()},
            "core_busy_percent": [100 * b / elapsed for b in spent.cores],
            "core_steal_percent": [100 * s / elapsed for s in spent.steal],
            "statements_per_request": {
                "todos": _per(observed.todo_statements, total_requests),
                "all": _per(observed.all_statements, total_requests),
            },
            "requests_all_phases": total_requests,
            "failures": by_phase["window"],
            "failures_by_phase": by_phase,
            "integrity": [c.as_dict() for c in checks],
            "histogram": histograms.encode(merged),
        }
        if config.follow and recorded.get("follow"):
            cell |= follow_mode.cell_fields(
                recorded["follow"], users=users, rps=rps, timeout=config.pool_timeout
            )
        if remote:
            cell |= _remote_cpu(remote_cpu, requests, elapsed, cell)
        expected = config.locust_processes + 1 if config.locust_processes > 1 else 1
        if config.expect_workers:
            expected = config.expect_workers + 1
            cell["workers_contributed"] = distributed.contributed(recorded)
            cell["worker_hosts"] = sorted(h for h in recorded.get("hosts", [])[1:] if h)
        if recorded["processes"] != expected and config.expect_workers:
            cell["reasons"].append(
                f"results of {distributed.contributed(recorded)} of {config.expect_workers} "
                "locust workers: a worker disconnected mid-cell"
            )
        elif config.expect_workers and len(per_user) > users:
            # a replacement worker joined mid-cell: locust respawned the lost worker's users
            cell["reasons"].append(
                f"{len(per_user)} users recorded for {users}: a worker was lost and replaced "
                "mid-cell"
            )
        elif recorded["processes"] != expected:
            cell["reasons"].append(
                f"results of {recorded['processes']} locust processes, expected {expected}"
            )
        if not remote:  # the server's own record of the connections it opened
            cell |= drivers.collect(self._driver_dir(name))
            unproven = drivers.mismatch(series.driver, cell)
            if unproven and cell["driver_connections"]:  # it ran on another driver
                cell["reasons"].append(unproven)
                unproven = None
        cell["reasons"] += validity_reasons(
            cell, placement, locust_processes=config.locust_processes
        )
        cell["warnings"] = warnings(cell)
        if "follow" in cell:
            cell["warnings"] += follow_mode.window_notes(cell, config.duration)
        if not remote and unproven:  # an app that records no evidence (not a registry variant)
            cell["warnings"].append(unproven)
        if cell.get("server_cpu", "").startswith("not measured"):
            cell["warnings"].append("server CPU " + cell["server_cpu"])
        cell["status"] = "invalid" if cell["reasons"] else "ok"
        return cell

    def _start_locust(
        self, locustfile: Path, host: str, users: int, raw: Path, placement: Placement
    ) -> subprocess.Popen[bytes]:
        config = self.config
        # The recorder ends the run after the window; -t is only a safety net.
        run_time = math.ceil(config.warmup + config.duration + config.follow + STOP_TIMEOUT + 20)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", str(users), "-r", str(users), "-t", f"{run_time}s", "--host", host,
            "--stop-timeout", str(STOP_TIMEOUT), "--csv", str(raw / "locust"),
            "--html", str(raw / "locust.html"), "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        if config.locust_processes > 1:
            cmd += local_processes_args(config.locust_processes)
        if config.expect_workers:
            master = distributed.Master(
                config.expect_workers, config.master_bind, config.master_port
            )
            cmd += master.locust_args()
        env = os.environ | protocol.environ(
            raw, warmup=config.warmup, duration=config.duration, follow=config.follow,
            seed_rows=database.SEED_ROWS,
        )  # fmt: skip
        with (raw / "locust.log").open("wb") as log:
            self.locust = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        cpu.pin([self.locust.pid], placement.others)
        return self.locust

    def _stop_children(self) -> None:
        if self.locust is not None:
            processes.stop(self.locust)
        for server in self.servers.values():
            server.stop()


def _save_co(run: Run, record: CoRecord) -> None:
    """run.json with the co-scheduled pass as far as it got (its model's document)."""
    run.doc["coscheduled"] = record.document()
    run.save()


def _kind(variant: str) -> str | None:
    """The registry kind of *variant* (None: not a registry variant)."""
    known = variants.VARIANTS.get(variant)
    return known.kind if known is not None else None


def local_processes_args(processes: int, port: int | None = None) -> list[str]:
    """Locust's ``--processes``: its master on loopback, on a free port (*port*, else one the
    kernel hands out), never locust's default 0.0.0.0:5557 that concurrent runs collide on.
    The forked workers connect with ``--master-host``/``--master-port``, so both are set."""
    port = port or free_port()
    return [
        "--processes", str(processes),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--master-host", "127.0.0.1", "--master-port", str(port),
    ]  # fmt: skip


def validity_reasons(
    cell: dict[str, Any], placement: Placement, *, locust_processes: int = 1
) -> list[str]:
    """Why a measured cell cannot be trusted (empty: it can)."""
    reasons = []
    if not cell["requests"]:
        reasons.append("no requests completed in the measurement window")
    phases = cell.get("failures_by_phase") or {"window": cell["failures"]}
    for phase, failed in phases.items():
        if failed:
            top = max(failed, key=failed.get)
            where = "" if phase == "window" else f" in the {phase} phase"
            reasons.append(f"{sum(failed.values())} failed requests{where} (most: {top})")
    if cell["cpu_percent"].get("locust", 0) > LOCUST_CPU_LIMIT * locust_processes:
        reasons.append(f"locust used {cell['cpu_percent']['locust']:.0f} % of a core")
    if placement.server != placement.others:
        for core in sorted(placement.others):
            busy = cell["core_busy_percent"][core] if core < len(cell["core_busy_percent"]) else 0
            if busy > CORE_BUSY_LIMIT:
                reasons.append(f"core {core} (locust, PostgreSQL) was {busy:.0f} % busy")
    reasons += [f"integrity: {c['name']}: {c['detail']}" for c in cell["integrity"] if not c["ok"]]
    return reasons


def warnings(cell: dict[str, Any]) -> list[str]:
    """What a valid cell's reader should know: it is a real result, but read it with care."""
    notes = []
    law = cell.get("littles_law")
    if law and not law["ok"]:
        notes.append(
            f"Little's law: recorded mean latency is {law['ratio']:.2f} × users / req/s "
            f"(tolerance ±{tails.LITTLE_TOLERANCE:.0%}): latencies leave out waiting time"
        )
    if cell.get("tail_resolved") is False:
        notes.append(
            f"tail not resolved: {cell['censored']['count']} requests censored at the window's "
            f"end, oldest {cell['censored']['max_age_us'] / 1000:.0f} ms"
        )
    return notes


def _connection_shortfall(config: RunConfig, postgres: dict[str, Any]) -> str | None:
    """Why PostgreSQL cannot hold every series' pool at once (None: it can)."""
    allowed = int(postgres.get("settings", {}).get("max_connections", 0) or 0)
    needed = sum((s.pool_size + config.max_overflow) * s.workers for s in config.series())
    margin = 10  # the runner's own connections, superuser-reserved slots
    if allowed and needed + margin > allowed:
        return (
            f"the {len(config.series())} series need up to {needed} connections at once but "
            f"PostgreSQL allows {allowed} (max_connections); lower --pool-size or --workers, "
            "or select fewer --variants"
        )
    return None


def _remote_cpu(
    readings: list[float | None], requests: int, elapsed: float, cell: dict[str, Any]
) -> dict[str, Any]:
    """A remote server's CPU from its /metrics at the window's edges (none without --metrics)."""
    before, after = readings
    if before is None or after is None:
        return {"server_cpu": "not measured: the remote server exports no /metrics"}
    seconds = after - before
    cell["cpu_us_per_request"]["server"] = seconds * 1e6 / requests if requests else None
    cell["cpu_percent"]["server"] = 100 * seconds / elapsed
    return {"server_cpu": "remote /metrics"}


def _per(count: int | None, requests: int) -> float | None:
    return count / requests if count is not None and requests else None


def _wait_for_start(raw: Path, locust: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The window the master (or only) locust process set, from its ``start.json``."""
    deadline = time.monotonic() + timeout
    while True:
        if (data := protocol.read(raw, protocol.START_FILE)) is not None:
            return data
        if locust.poll() is not None:
            raise RuntimeError(
                f"locust exited before starting:\n{processes.tail(raw / 'locust.log')}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"locust did not start within {timeout:.0f} s")
        time.sleep(0.02)


def _read_result(raw: Path) -> dict[str, Any] | None:
    """The master's (or only) locust process's ``result.json``: every process merged."""
    return protocol.read(raw, protocol.RESULT_FILE)


def _sample_until(deadline: float, sample: Callable[[], int], every: float = 0.1) -> int:
    """The largest value *sample* returns until *deadline* (epoch s); 0 if never sampled."""
    peak = 0
    while time.time() + every / 2 < deadline:
        peak = max(peak, sample())
        time.sleep(max(0.0, min(every, deadline - time.time())))
    _sleep_until(deadline)
    return peak


def stall_record(
    cell: dict[str, Any], lingering: dict[str, Any], duration: float
) -> dict[str, Any] | None:
    """What held what when a server that still held transactions after its cell had also
    stopped answering: no request completed in the window, or none in its last second (half
    the window if shorter): the youngest request in flight at the window's end is that old,
    and users send their next request at once (a starving but working server's youngest was
    under 0.1 s in the reference). None for a server that kept answering (a leak: invalid)."""
    censored = cell.get("censored") or {}
    quiet = 0.0
    if censored.get("count") and cell.get("censored_histogram"):
        quiet = histograms.merge([cell["censored_histogram"]]).get_min_value() / 1e6
    threshold = min(STALL_QUIET, duration / 2) if duration > 0 else STALL_QUIET
    if cell.get("requests") != 0 and quiet < threshold:
        return None
    return {
        "users": cell.get("users"),
        "in_flight": censored.get("count"),
        "requests_in_window": cell.get("requests"),
        "window_s": duration,
        "quiet_s": round(quiet, 2),
        "connections": lingering["count"],
        "states": lingering["states"],
        "held_s": lingering["max_age_s"],
    }


def _still_open(
    probe: Callable[[], list[integrity.Backend]], grace: float
) -> list[integrity.Backend]:
    """*probe*'s backends once it finds none, or those still there after *grace* s."""
    deadline = time.monotonic() + grace
    while (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _sleep_until(timestamp: float) -> None:
    delay = timestamp - time.time()
    if delay > 0:
        time.sleep(delay)
