"""Run ``sessionbench cost``: each variant under callgrind in turn, rows saved after each.

Order per variant: its server is already starting (the next variant's server is launched
as soon as the current one is ready, so valgrind's slow start-up overlaps a measurement;
start-up runs with instrumentation off and cannot disturb the other's counts), then the
database is reset to the seed, instrumentation is switched on, and the rows are measured.
Ctrl-C or SIGTERM: servers stopped, finished variants kept, cost.json marked incomplete.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import variants
from bench.common import database, drivers, environments
from bench.common.results import environment
from bench.common.server import ServerError
from bench.cost.endpoints import UnexpectedResponse
from bench.cost.measure import Plan, measure
from bench.cost.operations import OperationsPlan, run_operations, start_operations
from bench.cost.results import CostRun
from bench.cost.valgrind import CallgrindError, CallgrindProcess, CallgrindServer


@dataclass(frozen=True)
class CostConfig:
    mode: str
    variants: list[str]
    plan: Plan
    pool_size: int
    max_overflow: int
    out: Path
    valgrind: str
    keep_dumps: bool = False
    driver: str | None = None
    """None: each variant on its default driver."""
    operations: OperationsPlan | None = None
    """The micro-operations pass after the variants (None: none)."""

    def settings(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "variants": self.variants,
            **self.plan.settings(),
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "driver": self.driver,
            "drivers": {v: self.driver or drivers.default(v) for v in self.variants},
            "out": str(self.out),
            "valgrind_flags": list(_flags()),
            **({"operations": self.operations.settings()} if self.operations else {}),
        }

    @property
    def steps(self) -> int:
        return len(self.variants) * len(self.plan.groups())


def _flags() -> tuple[str, ...]:
    from bench.cost.valgrind import VALGRIND_FLAGS

    return VALGRIND_FLAGS


class Interrupted(Exception):
    pass


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def run_cost(config: CostConfig, progress: Callable[[str, int, int], None]) -> CostRun:
    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    env = environment() | {"valgrind": config.valgrind}
    run = CostRun.create(config.out, settings=config.settings(), env=env)
    servers: list[CallgrindProcess] = []
    status = "incomplete"
    try:
        with database.database_url_or_embedded() as (url, embedded):
            run.doc["environment"] |= {
                "database_url": url.redacted,
                "embedded_postgres": embedded is not None,
            }
            asyncio.run(database.ensure_schema(url))

            def launch(name: str) -> CallgrindServer:
                server = CallgrindServer(
                    name,
                    url,
                    raw=config.out / "raw" / "cost",
                    keep_dumps=config.keep_dumps,
                    env={
                        "SESSIONBENCH_POOL_SIZE": str(config.pool_size),
                        "SESSIONBENCH_MAX_OVERFLOW": str(config.max_overflow),
                        **drivers.server_env(name, config.driver),
                    },
                )
                servers.append(server)
                server.launch()
                return server

            try:
                operations = start_operations(config, url, servers.append)
                status = _variants(run, config, url, launch, progress)
                if not run_operations(run, config, url, progress, operations):
                    status = "partial" if status == "complete" else status
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                for server in servers:
                    server.stop()
    except Interrupted as exc:
        run.doc["interrupted_by"] = str(exc)
    finally:
        run.finish(status)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return run


def _variants(
    run: CostRun,
    config: CostConfig,
    url: database.DatabaseUrl,
    launch: Callable[[str], CallgrindServer],
    progress: Callable[[str, int, int], None],
) -> str:
    groups = len(config.plan.groups())
    done = 0
    failed = 0
    progress(f"starting {config.variants[0]} under valgrind", 0, config.steps)
    pending = launch(config.variants[0])
    for index, name in enumerate(config.variants):
        server = pending
        variant = variants.get(name)
        info: dict[str, Any] = {"label": variant.label, "kind": variant.kind}
        run.doc["variants"][name] = info
        started = time.monotonic()
        try:
            info["packages"] = environments.package_versions(variant)
            server.wait_ready()
            # launch → healthy; for every variant but the first an upper bound, since its
            # start-up overlapped the previous variant's measurement
            info["startup_seconds"] = server.startup_seconds
            info["startup_overlapped"] = index > 0
            if index + 1 < len(config.variants):
                pending = launch(config.variants[index + 1])  # overlaps this measurement
            asyncio.run(database.reset(url))
            server.instrument()

            def step(what: str, name: str = name) -> None:
                nonlocal done
                progress(f"{name} · {what}", done, config.steps)
                done += 1

            rows = asyncio.run(measure(server, config.plan, step))
            run.add_rows(rows)
        except (ServerError, CallgrindError, UnexpectedResponse) as exc:
            info["error"] = str(exc)
            failed += 1
            done = (index + 1) * groups
        finally:
            server.stop()
            if index + 1 < len(config.variants) and pending is server:
                pending = launch(config.variants[index + 1])
        info["seconds"] = round(time.monotonic() - started, 1)
        run.save()
    progress("done", config.steps, config.steps)
    return "complete" if not failed else "failed" if failed == len(config.variants) else "partial"
