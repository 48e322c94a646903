"""Instructions per micro-operation: ``bench/micro``'s operations counted under callgrind.

A process (``bench.cost.operations_hook`` on this interpreter, under the flags and fixed
hash seed of the counted servers, instrumentation off while it imports) runs operations on
command: a session opened, used and ended per strategy (``session-lifecycle``,
``session-select1``, ``session-get``) and the per-request machinery (one ASGI call of a
no-op endpoint), the functions ``bench/micro`` times (``bench.common.micro_ops``). Per
operation: one checked call, a warm-up of one repeat (uncounted), then per repeat ``gc`` →
``zero`` → ``run … N`` → ``dump``; instructions per operation = (dump − round trip) / N.
Two such processes count side by side (``LANES``), each taking whole groups, so every
ratio to ``context`` compares two rows of one process.

The round trip: ``run GROUP NAME 0`` between a zero and a dump counts what every repeat
pays besides its N operations (reading and parsing the line, entering the event loop,
printing ``done``). It is about 110,000 instructions — one bare session's lifecycle, 0.5 %
of a 200-lifecycle repeat, far above the 0.2 % spread target — so it is measured once per
process (median of the repeats), subtracted, and recorded in each row
(``round_trip_instructions``).

Repeats of one operation differ by a roughly fixed amount per repeat (50–250 k
instructions in the interpreter's eval loop and attribute lookups; not garbage collection
— the same with the collector disabled — and not the number of Python calls, which cProfile
finds equal in every repeat), so the spread falls as 1/N: ``OPS`` is the N that keeps every
group's spread at or below ~0.2 %. The level of ``session-get`` also moves by a few percent
between processes with a different history (what ran before it): compare its rows within
one run, not across runs with other operations selected.

The selected variants decide the rows: the session groups of every variant whose ``Micro``
declares a session operation (plus ``bare``, the floor, when ``context`` is selected), the
machinery group of every machinery operation it declares (plus ``plain`` when ``context``
is). A selected variant with none of them is recorded in ``operations_skipped`` with the
reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bench.common import database, drivers, processes
from bench.cost.measure import spread_percent
from bench.cost.operations_hook import FLOORS, GROUPS, Operation, catalogue
from bench.cost.valgrind import (
    START_TIMEOUT,
    CallgrindError,
    CallgrindProcess,
    callgrind_command,
    counted_cwd,
    counted_env,
)

if TYPE_CHECKING:
    from bench.cost.results import CostRun

LANES = 2
"""Operations processes counting side by side (counts are per process: load changes only
how long they take; the machine has 2 cores and the variants' servers have stopped)."""
COMMAND_TIMEOUT = 600.0  # s for one command: a repeat under callgrind on a busy machine
BASELINE = "context"

OPS = {"session-lifecycle": 200, "session-select1": 80, "session-get": 80, "machinery": 100}
"""Operations per repeat: at 3 repeats every row spread ≤ 0.18 % in two runs (at 40/30/50,
select1, get and machinery spread 0.3–0.9 %; lifecycle at 120 reached 0.21 %). For context +
depends (+ bare, plain) the pass then takes 47–70 s on 2 shared cores, its lanes (lifecycle +
get, select1 + machinery) about equal: get's repeats (~90 M instructions each) dominate."""
WARMUP = dict(OPS)
"""Operations run (uncounted) right before an operation's first repeat: one repeat's worth.
A quarter repeat was too little for some: in the reference of 2026-11-29 the first repeat of
context's and sqlmodel's three session groups counted ~1 % more than the two after it
(+1.4 k instructions per lifecycle, +10–13 k per select1 or get); the others ≤ 0.2 %."""


class CostSettings(Protocol):
    """What the pass reads of ``bench.cost.runner.CostConfig`` (not imported: it imports this)."""

    @property
    def variants(self) -> list[str]: ...
    @property
    def pool_size(self) -> int: ...
    @property
    def max_overflow(self) -> int: ...
    @property
    def out(self) -> Path: ...
    @property
    def keep_dumps(self) -> bool: ...
    @property
    def driver(self) -> str | None: ...
    @property
    def operations(self) -> OperationsPlan | None: ...
    @property
    def variant_steps(self) -> int: ...
    @property
    def steps(self) -> int: ...


@dataclass(frozen=True)
class OperationsPlan:
    """Which groups, how many operations per repeat and per warm-up, how many repeats."""

    groups: list[str]
    repeats: int
    ops: dict[str, int]
    warmup: dict[str, int]

    def settings(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "repeats": self.repeats,
            "ops_per_repeat": {g: self.ops[g] for g in self.groups},
            "warmup_ops": {g: self.warmup[g] for g in self.groups},
        }


def selection(names: list[str], groups: list[str]) -> tuple[list[Operation], dict[str, str]]:
    """The operations *names* (variants) get in *groups*, and why a variant gets none."""
    wanted = set(names) | (set(FLOORS.values()) if BASELINE in names else set())
    chosen = [op for op in catalogue() if op.group in groups and op.variant in wanted]
    covered = {op.variant for op in chosen}
    skipped = {
        name: "declares no micro-benchmark operation (Variant.micro)"
        if not any(op.variant == name for op in catalogue())
        else f"none of its operations is in the selected groups ({','.join(groups)})"
        for name in names
        if name not in covered
    }
    return chosen, skipped


class OperationsProcess(CallgrindProcess):
    """``python -m bench.cost.operations_hook`` under callgrind, driven through its stdin."""

    name = "operations"
    # Between commands it is blocked in read(): vgdb forces the monitor command in after
    # 1 ms instead of its default 100 ms (a zero and a dump per repeat).
    vgdb_flags = ("--max-invoke-ms=1",)

    def __init__(
        self,
        url: database.DatabaseUrl,
        *,
        raw: Path,
        env: dict[str, str],
        keep_dumps: bool,
        lane: int = 1,
    ) -> None:
        super().__init__(keep_dumps=keep_dumps)
        self.url = url
        self.raw = raw
        self.env = env
        self.name = f"operations-{lane}"
        self.out_base = raw / f"callgrind-{self.name}.out"
        self.log_path = raw / f"{self.name}.log"
        self.started_at = 0.0
        self.cwd: Path | None = None

    def launch(self) -> None:
        self.raw.mkdir(parents=True, exist_ok=True)
        cmd = callgrind_command(self.out_base, sys.executable, "-m", "bench.cost.operations_hook")
        env = counted_env({**self.env, "DATABASE_URL": self.url.url})
        self.cwd = counted_cwd()
        self.started_at = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                cwd=self.cwd,
            )

    def _answer(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line:
            why = "exited" if ready or not self.alive() else f"did not answer in {timeout:.0f} s"
            raise CallgrindError(f"the operations process {why}:\n{processes.tail(self.log_path)}")
        if line.startswith("error"):
            raise CallgrindError(f"{self.name} process: {line}")
        return line

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Wait for its ``ready``; return the start-up's seconds."""
        self._answer(timeout)
        return time.monotonic() - self.started_at

    def command(self, *words: str | int) -> str:
        assert self.process is not None and self.process.stdin is not None
        try:
            self.process.stdin.write((" ".join(map(str, words)) + "\n").encode())
            self.process.stdin.flush()
        except (OSError, ValueError):  # it exited (or was stopped): its stdin is gone
            raise CallgrindError(f"the {self.name} process is not running") from None
        return self._answer(COMMAND_TIMEOUT)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.stdin is not None and self.alive():
            self.process.stdin.close()  # end of input: the hook disposes the engine and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        super().stop()
        if self.cwd is not None:
            shutil.rmtree(self.cwd, ignore_errors=True)

    def count(self, label: str, group: str, name: str, n: int) -> int:
        """Instructions of one ``run GROUP NAME n`` from a collected heap."""
        self.command("gc")
        self.zero()
        self.command("run", group, name, n)
        return self.dump(label)


def measure_operations(
    process: OperationsProcess,
    plan: OperationsPlan,
    operations: list[Operation],
    progress: Callable[[Operation], None],
    save: Callable[[dict[str, Any]], None],
) -> None:
    """Count every operation of *operations* in the instrumented *process*; *save* each row."""
    first = operations[0]
    process.command("run", first.group, first.name, 1)
    round_trip = statistics.median(
        process.count(f"round-trip-r{r + 1}", first.group, first.name, 0)
        for r in range(plan.repeats)
    )
    for op in operations:
        progress(op)
        n = plan.ops[op.group]
        process.command("check", op.group, op.name)
        process.command("run", op.group, op.name, plan.warmup[op.group])
        totals, seconds = [], []
        for r in range(plan.repeats):
            started = time.monotonic()
            totals.append(process.count(f"{op.group}-{op.name}-r{r + 1}", op.group, op.name, n))
            seconds.append(time.monotonic() - started)
        per_op = [(t - round_trip) / n for t in totals]
        save(
            {
                "variant": op.variant,
                "group": op.group,
                "operation": op.label,
                "name": op.name,
                "instructions_per_op": statistics.median(per_op),
                "spread_percent": spread_percent(per_op),
                "spread": "(max - min) / median of the repeats",
                "repeats": plan.repeats,
                "ops": n,
                "per_repeat": per_op,
                "round_trip_instructions": round_trip,
                "seconds_per_repeat": seconds,
            }
        )


def start_operations(
    config: CostSettings, url: database.DatabaseUrl, track: Callable[[CallgrindProcess], None]
) -> list[OperationsProcess]:
    """Launch the operations processes, one per lane (none: no operation selected): their
    start-up, with instrumentation off, overlaps the variants' measurement and cannot
    disturb their counts."""
    if config.operations is None:
        return []
    operations = selection(config.variants, config.operations.groups)[0]
    started = []
    groups = {op.group for op in operations}
    for lane in range(1, min(LANES, len(groups)) + 1):
        process = OperationsProcess(
            url,
            raw=config.out / "raw" / "cost",
            keep_dumps=config.keep_dumps,
            lane=lane,
            env={
                "SESSIONBENCH_POOL_SIZE": str(config.pool_size),
                "SESSIONBENCH_MAX_OVERFLOW": str(config.max_overflow),
                **drivers.server_env(BASELINE, config.driver),
            },
        )
        track(process)
        process.launch()
        started.append(process)
    return started


def run_operations(
    run: CostRun,
    config: CostSettings,
    url: database.DatabaseUrl,
    progress: Callable[[str, int, int], None],
    lanes: list[OperationsProcess],
) -> bool:
    """The operations pass of a cost run, on the processes of *lanes* side by side (groups
    dealt round-robin: lifecycle + get and select1 + machinery by default, about equal
    work): rows saved as they finish; False if a lane failed."""
    if config.operations is None:
        return True
    plan = config.operations
    operations, skipped = selection(config.variants, plan.groups)
    run.doc["operations_skipped"] = skipped
    run.save()
    if not lanes:
        return True
    total = config.steps  # the variants' rows, then these operations
    done = config.variant_steps
    lock = threading.Lock()
    progress("operations: waiting for their processes under valgrind", done, total)
    started = time.monotonic()

    def step(op: Operation) -> None:
        nonlocal done
        with lock:
            progress(f"operations · {op.group} · {op.variant}", done, total)
            done += 1

    def save(row: dict[str, Any]) -> None:
        with lock:
            run.add_operation_row(row)

    def lane(process: OperationsProcess, mine: list[Operation]) -> None:
        process.wait_ready()
        process.instrument()
        measure_operations(process, plan, mine, step, save)

    asyncio.run(database.reset(url))  # session-get reads the seed's rows
    pool = ThreadPoolExecutor(len(lanes), thread_name_prefix="operations")
    # a group's operations share a process: their ratios to context's carry no difference
    # of process history (what ran before shifts a session-get by up to ~2 %)
    groups = [g for g in GROUPS if g in plan.groups]
    futures = [
        pool.submit(lane, p, [op for op in operations if op.group in groups[i :: len(lanes)]])
        for i, p in enumerate(lanes)
    ]
    errors = []
    try:
        for future in futures:
            try:
                future.result()
            except CallgrindError as exc:
                errors.append(str(exc))
    finally:
        for process in lanes:
            process.stop()
        pool.shutdown(wait=True)  # a lane still counting fails at once on its stopped process
        if errors:
            run.doc["operations_error"] = "; ".join(errors)
        run.doc["operations_seconds"] = round(time.monotonic() - started, 1)
        run.save()
    return not errors


def plan_for(groups: list[str] | None, repeats: int) -> OperationsPlan | None:
    """The plan of ``--operations`` (*groups* None: every group; empty, ``none``: no plan)."""
    chosen = list(GROUPS) if groups is None else groups
    return OperationsPlan(chosen, repeats, OPS, WARMUP) if chosen else None
