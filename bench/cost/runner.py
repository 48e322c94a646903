"""Run ``sessionbench cost``: each variant under callgrind, rows saved after each.

Variants are dealt to *lanes* (``--lanes``, default 2 on this two-core machine) that run
side by side, each with its own scratch database, so
one lane's write cycles cannot move the other's ids. Instruction counts do not depend on
the speed a server gets: requests reach it in lockstep bursts (``bench.cost.client``).
Order per variant within a lane: its server is already starting (the next variant's server
is launched as soon as the current one is ready, so valgrind's slow start-up overlaps a
measurement; start-up runs with instrumentation off and cannot disturb the other's counts),
then the lane's database is reset to the seed, instrumentation is switched on, and the rows
are measured. Ctrl-C or SIGTERM: servers stopped, finished variants kept, cost.json marked
incomplete (``bench.common.lifecycle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import variants
from bench.common import database, drivers, environments
from bench.common.lifecycle import RunLifecycle, stopping
from bench.common.server import ServerError
from bench.cost import profile
from bench.cost.client import ProtocolError
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
    lanes: int = 1
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
            "lanes": self.lanes,
            "drivers": {v: self.driver or drivers.default(v) for v in self.variants},
            "out": str(self.out),
            "valgrind_flags": list(_flags()),
            **({"operations": self.operations.settings()} if self.operations else {}),
        }

    @property
    def variant_steps(self) -> int:
        return len(self.variants) * len(self.plan.groups())

    @property
    def steps(self) -> int:
        """Progress steps: every (variant, endpoint, clients) row, then every operation."""
        if self.operations is None:
            return self.variant_steps
        from bench.cost.operations import selection

        return self.variant_steps + len(selection(self.variants, self.operations.groups)[0])


def _flags() -> tuple[str, ...]:
    from bench.cost.valgrind import VALGRIND_FLAGS

    return VALGRIND_FLAGS


def run_cost(config: CostConfig, progress: Callable[[str, int, int], None]) -> CostRun:
    servers: list[CallgrindProcess] = []
    lanes = max(1, min(config.lanes, len(config.variants)))
    # every lane on a scratch database, the first too: database names of one length, as the
    # servers' DATABASE_URL is in their environment (``valgrind.counted_env``)
    scratch = [f"sessionbench_cost_lane{n + 1}" for n in range(lanes)]
    lifecycle = RunLifecycle(
        CostRun, config.out, settings=config.settings(), env={"valgrind": config.valgrind}
    )
    with lifecycle as life, database.database_url_or_embedded() as (url, embedded):
        run = life.run
        run.doc["environment"] |= {
            "database_url": url.redacted,
            "embedded_postgres": embedded is not None,
        }
        asyncio.run(database.ensure_schema(url))

        def stop() -> None:
            for server in servers:
                server.stop()
            for name in scratch:
                with contextlib.suppress(Exception):  # gone with the embedded server
                    asyncio.run(database.drop_scratch(url, name))

        with stopping(stop):
            urls = [asyncio.run(database.create_scratch(url, n)) for n in scratch]
            operations = start_operations(config, url, servers.append)
            life.status = _lanes(run, config, urls, servers, _Progress(progress, config.steps))
            if not run_operations(run, config, url, progress, operations):
                life.status = "partial" if life.status == "complete" else life.status
            progress("done", config.steps, config.steps)
    return life.run


class _Progress:
    """One progress bar fed by every lane: a step counter shared under a lock."""

    def __init__(self, progress: Callable[[str, int, int], None], total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.lock = threading.Lock()

    def step(self, label: str, steps: int = 1) -> None:
        with self.lock:
            self.progress(label, self.done, self.total)
            self.done += steps


def _lanes(
    run: CostRun,
    config: CostConfig,
    urls: list[database.DatabaseUrl],
    servers: list[CallgrindProcess],
    progress: _Progress,
) -> str:
    """Run one lane per URL in threads, each taking the next variant of one shared queue
    when it launches a server (a lane that finishes early takes more: variants differ by up
    to 2× in time, and a fixed deal left one lane idle for a variant's length); the main
    thread waits, so that Ctrl-C and SIGTERM still reach it."""
    lock = threading.Lock()
    queue = _Queue(config.variants)
    failed: list[int] = []
    errors: list[BaseException] = []

    def lane(url: database.DatabaseUrl) -> None:
        try:
            failed.append(_variants(run, config, queue, url, servers, progress, lock))
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=lane, args=(url,), daemon=True) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    if errors:
        raise errors[0]
    failures = sum(failed)
    return (
        "complete" if not failures else "failed" if failures == len(config.variants) else "partial"
    )


class _Queue:
    """The variants not yet taken by a lane, in order."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.lock = threading.Lock()

    def take(self) -> str | None:
        with self.lock:
            return self.names.pop(0) if self.names else None


def _variants(
    run: CostRun,
    config: CostConfig,
    queue: _Queue,
    url: database.DatabaseUrl,
    servers: list[CallgrindProcess],
    progress: _Progress,
    lock: threading.Lock,
) -> int:
    """Measure variants of *queue* one after the other on *url*'s database until it is
    empty; the number that failed."""
    groups = len(config.plan.groups())
    failed = 0

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
        with lock:
            servers.append(server)
        server.launch()
        return server

    def launch_next() -> CallgrindServer | None:
        name = queue.take()
        return None if name is None else launch(name)

    pending = launch_next()
    index = 0
    while pending is not None:
        server, pending = pending, None
        name = server.name
        variant = variants.get(name)
        with lock:  # the label is parsed with ast, which CPython 3.11 cannot run in two
            # threads at once ("AST constructor recursion depth mismatch", a SystemError)
            info: dict[str, Any] = {"label": variant.label, "kind": variant.kind}
            run.doc["variants"][name] = info
        started = time.monotonic()
        steps = 0
        try:
            info["packages"] = environments.package_versions(variant)
            server.wait_ready()
            # launch → healthy; for every variant but a lane's first an upper bound, since
            # its start-up overlapped the previous variant's measurement
            info["startup_seconds"] = server.startup_seconds
            info["startup_overlapped"] = index > 0
            pending = launch_next()  # overlaps this measurement
            asyncio.run(database.reset(url))  # measure switches instrumentation on and off

            def step(what: str, name: str = name) -> None:
                nonlocal steps
                progress.step(f"{name} · {what}")
                steps += 1

            rows = asyncio.run(
                measure(server, config.plan, step, lambda p: profile.save(p, config.out))
            )
            with lock:
                run.add_rows(rows)
        except (ServerError, CallgrindError, UnexpectedResponse, ProtocolError) as exc:
            info["error"] = str(exc)
            failed += 1
            progress.step(f"{name} failed", groups - steps)
        finally:
            server.stop()
            if pending is None:  # failed before launching the next
                pending = launch_next()
        index += 1
        info["seconds"] = round(time.monotonic() - started, 1)
        with lock:
            run.save()
    return failed
