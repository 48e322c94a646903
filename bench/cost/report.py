"""The cost section of the report: instructions per request per variant and endpoint,
relative to ``context`` and to ``raw``, beside the load run's server-CPU ratio.

``section(folder)`` (registered as "cost") returns nothing when the folder has no
cost.json. When the folder also has a run.json, each instruction ratio vs ``context`` is
set beside the load benchmark's server-CPU-per-request ratio of the matching scenario
(``get`` ↔ read, ``write`` ↔ write, ``multi`` ↔ multi) with its 95 % CI, and flagged when
the instruction ratio lies outside that CI. ``build_alone(folder)`` writes a whole report
for a folder that has only a cost.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common.blocks import (
    Block,
    bullets,
    h1,
    h2,
    p,
    register_section,
    table,
    write_report,
)
from bench.common.result_files import CostFile, RunFile
from bench.common.results import Run
from bench.common.run_folder import RUN, RunFolder
from bench.cost.results import COST_FILE, OPERATION_GROUPS, load

SCENARIO_OF = {"get": "read", "write": "write", "multi": "multi"}
"""Load scenario whose requests are one endpoint's (list and health have none of their own)."""

ENDPOINT_ORDER = ("get", "list", "multi", "write", "health")
BASELINE = "context"
FLOOR = "raw"
OPERATION_HEADERS = [
    "group",
    "variant",
    "operation",
    "instr/op",
    "spread",
    "vs context",
    "ops × repeats",
]


def cpu_ratio(run: RunFile, variant: str, scenario: str) -> dict[str, Any] | None:
    """Server CPU per request of *variant* vs ``context`` in *scenario*, paired: from the
    co-scheduled pass where the run has one (window pairs on one core; the inverse of the
    req/s-per-core ratio), else by round (the geometric mean of per-round ratios of the solo
    cells, t-interval on their logs); at the highest user count that has it (None: nothing
    to set beside)."""
    from bench.common.pairs import co_comparison
    from bench.common.stats import compare_paired

    users = sorted({c.users for c in run.cells if c.scenario == scenario})
    for top in reversed(users):
        co = co_comparison(run.coscheduled, BASELINE, variant, scenario, top)
        if co is not None and co.comparison.low is not None:
            c = co.comparison.inverted()  # req/s per core -> CPU per request
            return {"ratio": c.ratio, "low": c.low, "high": c.high, "users": top,
                    "how": f"co-scheduled, {c.n_a} window pairs"}  # fmt: skip
    cells: dict[tuple[str, int], dict[int, float]] = {}
    for cell in run.cells:
        server = cell.server_us
        if cell.ok and cell.scenario == scenario and server:
            trials = cells.setdefault((cell.variant, cell.users), {})
            trials[cell.trial if cell.trial is not None else len(trials) + 1] = server
    for top in reversed(users):
        a, b = cells.get((BASELINE, top), {}), cells.get((variant, top), {})
        pairs = [(a[t], b[t]) for t in sorted(a) if t in b]
        if len(pairs) >= 2:
            c = compare_paired(pairs)
            return {"ratio": c.ratio, "low": c.low, "high": c.high, "users": top,
                    "how": f"paired by round, n={len(pairs)}"}  # fmt: skip
    return None


def _ratio_cell(ratio: float, spread: float) -> str:
    return f"{ratio:.3f} (±{spread:.2f} %)"


def rows_for(cost: CostFile, run: RunFile | None) -> tuple[list[list[str]], int, int]:
    """Table rows (one per variant × endpoint × clients), how many were checked against the
    load run's server CPU, and how many of those disagree."""
    index = cost.row_index()
    out, disagreements, checked = [], 0, 0
    ordered = sorted(
        index.values(),
        key=lambda r: (
            ENDPOINT_ORDER.index(r.endpoint) if r.endpoint in ENDPOINT_ORDER else 99,
            r.clients,
            r.instructions_per_request,
        ),
    )
    for r in ordered:
        value, spread = r.instructions_per_request, r.spread_percent
        cells = [r.endpoint, str(r.clients), r.variant, f"{value:,.0f}", f"{spread:.2f} %"]
        for ref_name in (BASELINE, FLOOR):
            ref = index.get((ref_name, r.endpoint, r.clients))
            cells.append(
                _ratio_cell(value / ref.instructions_per_request, spread + ref.spread_percent)
                if ref
                else "–"
            )
        cpu_cell, agree = "–", ""
        base = index.get((BASELINE, r.endpoint, r.clients))
        scenario = SCENARIO_OF.get(r.endpoint)
        if run is not None and scenario and base and r.variant != BASELINE:
            cpu = cpu_ratio(run, r.variant, scenario)
            if cpu is not None:
                ratio = value / base.instructions_per_request
                if cpu["low"] is None or cpu["high"] is None:
                    cpu_cell = f"{cpu['ratio']:.3f} (no CI: {cpu['how']})"
                else:
                    cpu_cell = (
                        f"{cpu['ratio']:.3f} [{cpu['low']:.3f}, {cpu['high']:.3f}] "
                        f"({scenario}, {cpu['users']} users, {cpu['how']})"
                    )
                    inside = cpu["low"] <= ratio <= cpu["high"]
                    checked += 1
                    agree = "agrees" if inside else "**disagrees**"
                    disagreements += not inside
        out.append([*cells, cpu_cell, agree])
    return out, checked, disagreements


def operation_rows(cost: CostFile) -> list[list[str]]:
    """Table rows of the ``operations`` list (``OPERATION_HEADERS``): by group, cheapest first;
    the session groups relative to ``context``'s row of the same group."""
    rows = cost.operations
    base = {r.group: r for r in rows if r.variant == BASELINE and r.group != "machinery"}
    ordered = sorted(
        rows,
        key=lambda r: (
            OPERATION_GROUPS.index(r.group) if r.group in OPERATION_GROUPS else 99,
            r.instructions_per_op,
        ),
    )
    out = []
    for r in ordered:
        value, spread, ref = r.instructions_per_op, r.spread_percent, base.get(r.group)
        out.append(
            [
                r.group,
                r.variant,
                r.operation,
                f"{value:,.0f}",
                f"{spread:.2f} %",
                _ratio_cell(value / ref.instructions_per_op, spread + ref.spread_percent)
                if ref
                else "–",
                f"{r.ops} × {r.repeats}",
            ]
        )
    return out


def _load_run(folder: Path) -> RunFile | None:
    """The folder's load run, if it has one with cells (read once: bench.common.results)."""
    if not RunFolder(folder).has(RUN):
        return None
    run = Run.read(folder).file
    return run if run.cells else None


@register_section("cost")
def section(folder: Path) -> tuple[list[Block], list[Path]]:
    """The cost blocks of *folder* (nothing when it has no cost.json)."""
    if not (folder / COST_FILE).exists():
        return [], []
    cost = load(folder)
    run = _load_run(folder)
    rows, checked, disagreements = rows_for(cost, run)
    s = cost.settings
    blocks = [
        h2("Instructions per request (valgrind)"),
        p(
            f"Instructions the server process executed per request, counted by callgrind "
            f"({cost.environment.get('valgrind')}): user space of the server only — not "
            f"PostgreSQL, not the kernel, not time spent waiting. Median of {s.repeats} "
            f"repeats after a warm-up; spread = (max − min) / median of the repeats. Ratios "
            f"carry the two rows' spreads added. Status {cost.status}."
        ),
    ]
    if run is None:
        blocks.append(p("No load run in this folder: no server-CPU ratios to set beside."))
    elif not checked:
        blocks.append(
            p(
                "The load run in this folder has no valid cells (with a CI) for the scenarios "
                "matching these endpoints: no server-CPU ratio to check the instruction ratios "
                "against."
            )
        )
    else:
        blocks.append(
            p(
                "Server CPU vs context: the load run's server CPU per request against context's, "
                "paired (co-scheduled window pairs where the run has them, else by round: "
                "geometric mean of the paired ratios) with its 95 % t-interval, at the highest "
                "user count. "
                + (
                    f"{disagreements} instruction ratio(s) lie outside that CI (flagged): the "
                    "two measures disagree there (CPU also counts the kernel, caches, waiting)."
                    if disagreements
                    else "Every instruction ratio lies inside its CPU CI."
                )
            )
        )
    blocks.append(
        table(
            [
                "endpoint",
                "clients",
                "variant",
                "instr/request",
                "spread",
                "vs context",
                "vs raw",
                "server CPU vs context (load run)",
                "CPU check",
            ],
            rows,
        )
    )
    operations = operation_rows(cost)
    if operations:
        blocks += [
            h2("Instructions per micro-operation (valgrind)"),
            p(
                "The micro-benchmarks' operations (bench/micro: a session opened, used and "
                "ended per strategy; one ASGI call of a no-op endpoint) run N times per repeat "
                "in one process under callgrind, from a collected heap; instructions per "
                "operation = (dump − one command's round trip) / N, median of the repeats. "
                "Session groups relative to context's operation of the same group."
            ),
            table(OPERATION_HEADERS, operations),
        ]
    skipped = [f"{name}: {why}" for name, why in cost.operations_skipped.items()]
    if cost.operations_error:
        skipped.append(f"the operations pass failed: {cost.operations_error[:300]}")
    if skipped:
        blocks += [p("Micro-operations not counted:"), bullets(skipped)]
    errors = [
        f"{name}: {info['error'][:300]}"
        for name, info in cost.variants.items()
        if info.get("error")
    ]
    if errors:
        blocks += [p("Variants that could not be measured:"), bullets(errors)]
    from bench.cost import explain_report

    explained, written = explain_report.blocks(folder, cost)
    return blocks + explained, written


def build_alone(folder: Path) -> list[Path]:
    """report.md and index.html for a folder with a cost.json and no load run."""
    doc = load(folder)
    env = doc.environment
    title = f"sessionbench cost — {doc.run_id}"
    blocks, written = section(folder)
    blocks = [
        h1(title),
        p(
            f"{env.get('cpu_model')} × {env.get('cpu_count')}, run {doc.started}, "
            f"command: {' '.join(doc.command)}."
        ),
        *blocks,
    ]
    return [*written, *write_report(folder, blocks, title)]
