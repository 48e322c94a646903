"""Three questions FastAPI users ask before they pick a strategy, each answered from the numbers.

"I followed FastAPI's own tutorial" (``sqlmodel`` against ``depends``), "does async even buy
me anything?" (``sync_threadpool`` against ``context``, both on psycopg, so the driver does
not decide it: the driver run of ``scripts/reference`` holds both) and "asyncpg or
psycopg?" (the driver axis). Each answer is one sentence built from the run folders it is
given: req/s of the ``read`` scenario at each user count, with the paired verdict of
``bench.report.compare`` (or why there is none), and instructions per GET from ``cost.json``
where the folder has one. A question whose series no folder holds is left out; no claim is
made that no number in the folders backs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

from bench.common.blocks import Block, bullets, h2
from bench.common.result_files import LoadCell, SeriesInfo
from bench.common.results import Run
from bench.common.run_folder import RUN, RunFolder
from bench.common.stats import Comparison, signed_percent
from bench.load import stalls
from bench.load.verdicts import METRICS, within
from bench.report.scorecard import get_instructions

SCENARIO = "read"  # GET by id: the endpoint the instruction counts are taken on
RESOLVED_SAME = 2.0  # instruction ratios within this many per cent count as "the same cost"

Cell = LoadCell


def _signed(value: float) -> str:
    return signed_percent(value)


def _short(c: Comparison, where: str) -> str:
    """A verdict in a few words: the change at *where*, and whether the run resolved it."""
    change = " ".join(filter(None, (_signed(c.change_percent), "req/s", where)))
    if c.low is None or c.high is None:
        return f"{change} (not resolved: {c.note or 'no interval'})"
    ci = f"CI {_signed(100 * (c.low - 1))}…{_signed(100 * (c.high - 1))}"
    if c.equivalent:
        return f"{change} (no difference within ±{c.margin_percent:g} %, {ci})"
    return f"{change} ({ci})" if c.significant else f"{change} (not resolved, {ci})"


def _invalid(cells: list[Cell], series: str, users: int) -> str | None:
    """Why *series* has no valid read cell at *users*, or None when it has one."""
    own = [c for c in cells if (c.variant, c.scenario, c.users) == (series, SCENARIO, users)]
    if not own:
        return "not run"
    if any(c.ok for c in own):
        return None
    reasons = [r for c in own for r in c.reasons]
    first = f": {reasons[0]}" if reasons else ""
    return f"all {len(own)} of its cells invalid{first}"


def _rps(run: Run, base: str, other: str) -> list[str]:
    """*other*'s req/s against *base* at each user count of the read scenario."""
    levels = sorted({c.users for c in run.file.cells if c.scenario == SCENARIO})
    rows = {
        r.users: r.comparison
        for r in within(run, base, METRICS["rps"])
        if r.b == other and r.scenario == SCENARIO
    }
    out = []
    for users in levels:
        why = _invalid(run.file.cells, other, users) or _invalid(run.file.cells, base, users)
        if users in rows:
            out.append(_short(rows[users], f"at {users} users"))
        else:
            out.append(f"no comparison at {users} users ({why or 'no common round'})")
    return out


def _instructions(folder: Path, base: str, other: str) -> float | None:
    counts = get_instructions(folder)
    if base in counts and other in counts:
        return counts[other] / counts[base]
    return None


def _cost_phrase(ratio: float | None, base: str) -> str:
    if ratio is None:
        return "no instruction count in this folder"
    return f"executes ×{ratio:.3f} {base}'s instructions per GET"


def _find(folders: Sequence[Path], *series: str) -> tuple[Path, Run] | None:
    """The first folder whose run has every one of *series*."""
    for folder in folders:
        if not RunFolder(folder).has(RUN):
            continue
        run = Run.read(folder)
        present = {c.variant for c in run.file.cells}
        if all(s in present for s in series):
            return folder, run
    return None


def tutorial(folders: Sequence[Path]) -> str | None:
    """sqlmodel (FastAPI's SQL tutorial) against depends."""
    found = _find(folders, "sqlmodel", "depends")
    if found is None:
        return None
    folder, run = found
    ratio = _instructions(folder, "depends", "sqlmodel")
    if ratio is None:
        close = "the instruction count would tell the cost apart"
    elif abs(ratio - 1) * 100 <= RESOLVED_SAME:
        close = "the tutorial's SQLModel session costs what a plain `SessionDep` costs"
    else:
        close = f"SQLModel's layer costs {_signed(100 * (ratio - 1))} per GET"
    return (
        f"**I followed FastAPI's tutorial (SQLModel).** Against `depends`, `sqlmodel` serves "
        f"{'; '.join(_rps(run, 'depends', 'sqlmodel'))}; "
        f"{_cost_phrase(ratio, 'depends')}: {close}."
    )


def _on(run: Run, variant: str, driver: str) -> str | None:
    """The series of *run* that is *variant* on *driver* (by the run's own record)."""
    for series, info in run.file.variants.items():
        own = info.variant if info.recorded("variant") else series.split("+", 1)[0]
        on = (info.driver or "asyncpg") == driver
        if own == variant and on and any(c.variant == series for c in run.file.cells):
            return series
    return None


def _answer(run: Run, comparison: Comparison | None, series: str, users: int) -> str:
    """Async's answer at *users*: faster, slower, no difference, not resolved or deadlock."""
    if any(
        stalls.is_stall(c, run.file)
        for c in run.file.cells
        if (c.variant, c.scenario, c.users) == (series, SCENARIO, users)
    ):
        return "the threadpool deadlocks"
    if comparison is None:
        return "not compared"
    if comparison.significant:
        return "async faster" if comparison.change_percent < 0 else "sync faster"
    return "no difference" if comparison.equivalent else "not resolved"


def sync_vs_async(folders: Sequence[Path]) -> str | None:
    """sync_threadpool against context on the same driver (psycopg), per user count."""
    for folder in folders:
        if not RunFolder(folder).has(RUN):
            continue
        run = Run.read(folder)
        sync = _on(run, "sync_threadpool", "psycopg")
        context = _on(run, "context", "psycopg")
        if sync is not None and context is not None:
            return _sync_vs_async(folder, run, sync, context)
    return None


def _sync_vs_async(folder: Path, run: Run, sync: str, context: str) -> str:
    info = run.file.variants.get(sync, SeriesInfo())
    setup = ", ".join(
        f"{label} {getattr(info, key)}"
        for key, label in (("threadpool_tokens", "threads"), ("pool_size", "pool"))
        if info.recorded(key)
    )
    levels = sorted({c.users for c in run.file.cells if c.scenario == SCENARIO})
    rows = {
        r.users: r.comparison
        for r in within(run, context, METRICS["rps"])
        if r.b == sync and r.scenario == SCENARIO
    }
    parts, answers = [], []
    for users in levels:
        answer = _answer(run, rows.get(users), sync, users)
        answers.append(answer)
        if answer == "the threadpool deadlocks":
            found = stalls.stalls(run.file).get(sync)
            detail = f" ({found.evidence().split(': ', 1)[1]})" if found else ""
            parts.append(f"at {users} users {answer}{detail}")
        elif users in rows:
            parts.append(_short(rows[users], f"at {users} users"))
        else:
            why = _invalid(run.file.cells, sync, users) or _invalid(run.file.cells, context, users)
            parts.append(f"no comparison at {users} users ({why or 'no common round'})")
    measured = [(u, a) for u, a in zip(levels, answers, strict=True) if a != "not compared"]
    changes = [
        f"from {users} users on: {now}"
        for (_, before), (users, now) in pairwise(measured)
        if now != before
    ]
    if len(measured) < 2:
        close = "too few user counts compared to say where the answer changes"
    elif changes:
        first, answer = measured[0]
        close = f"the answer changes {'; '.join(changes)} (at {first} users: {answer})"
    else:
        close = f"the same answer at every user count compared ({measured[0][1]})"
    ratio = _instructions(folder, "context", "sync_threadpool")
    cost = f"; {_cost_phrase(ratio, 'context')}" if ratio is not None else ""
    return (
        f"**Does async buy me anything?** Both on psycopg, so the driver is not what differs "
        f"(`{folder.name}`): the sync `Session` in FastAPI's threadpool (`sync_threadpool`"
        f"{', ' + setup if setup else ''}) against the async `context` strategy in the "
        f"{SCENARIO} scenario: {'; '.join(parts)}{cost}; {close}."
    )


def _driver_series(run: Run) -> dict[str, dict[str, str]]:
    """variant → driver → series, for the variants run on more than one driver."""
    by_variant: dict[str, dict[str, str]] = {}
    for series, info in run.file.variants.items():
        driver = info.driver
        if driver:
            own = info.variant if info.recorded("variant") else series
            by_variant.setdefault(str(own), {})[driver] = series
    return {v: d for v, d in by_variant.items() if len(d) > 1}


def _median_rps(run: Run, series: str, users: int) -> float | None:
    values = [c.measured_rps for c in run.file.cells if c.ok and (
        c.variant, c.scenario, c.users) == (series, SCENARIO, users)]  # fmt: skip
    return statistics.median(values) if values else None


def drivers(folders: Sequence[Path]) -> str | None:
    """psycopg against asyncpg per strategy, and whether the ranking holds."""
    for folder in folders:
        if not RunFolder(folder).has(RUN):
            continue
        run = Run.read(folder)
        pairs = _driver_series(run)
        if not all({"asyncpg", "psycopg"} <= set(d) for d in pairs.values()) or not pairs:
            continue
        top = max(c.users for c in run.file.cells if c.scenario == SCENARIO)
        per = []
        for variant, series in pairs.items():
            rows = [
                r.comparison
                for r in within(run, series["asyncpg"], METRICS["rps"])
                if r.b == series["psycopg"] and (r.scenario, r.users) == (SCENARIO, top)
            ]
            per.append(f"`{variant}` " + (_short(rows[0], "") if rows else "not compared"))
        orders = {}
        for driver in ("asyncpg", "psycopg"):
            ranked = [(_median_rps(run, s[driver], top), v) for v, s in pairs.items()]
            orders[driver] = [v for r, v in sorted(ranked, key=lambda x: -(x[0] or 0)) if r]
        same = orders["asyncpg"] == orders["psycopg"]
        holds = (
            "one strategy on both drivers, so no ranking to compare"
            if len(pairs) < 2 or min(len(o) for o in orders.values()) < 2
            else "the ranking by median req/s holds"
            if same
            else "the ranking by median req/s changes (asyncpg: "
            + " > ".join(orders["asyncpg"])
            + "; psycopg: "
            + " > ".join(orders["psycopg"])
            + "; read the verdicts for which differences are resolved)"
        )
        return (
            f"**asyncpg or psycopg?** On psycopg against the same strategy on asyncpg, read at "
            f"{top} users ({folder.name}): {'; '.join(per)}; {holds}."
        )
    return None


def answers(folders: Sequence[Path]) -> list[str]:
    """The answers the folders hold, in question order."""
    return [a for q in (tutorial, sync_vs_async, drivers) if (a := q(folders)) is not None]


def blocks(folders: Sequence[Path]) -> list[Block]:
    """A report or README section with the answers; empty when no folder holds a question."""
    found = answers(folders)
    return [h2("Three questions, answered from this run"), bullets(found)] if found else []
