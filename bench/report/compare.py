"""``sessionbench compare``: strategies within a run, or the same cells between two runs.

Within one run every variant is set against ``--baseline`` in each (scenario, users): from
the co-scheduled pass where the run has one (bench/load/coschedule.py: window pairs measured
on one core at the same instants, req/s per core, Holm-corrected over every co-scheduled
comparison of the run), else paired by round (the cell's ``trial``: each series ran once
per round); between two runs every cell of B against the same cell of A, unpaired. Only
valid trials count. Changes are in the metric itself (req/s: + is more requests per
second). ``--fail-above PCT`` exits 1 when B is significantly worse than A by more than
PCT % of the metric (for CI).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.common.console import console
from bench.common.pairs import co_comparisons
from bench.common.results import Run, latest_run, series_names
from bench.common.stats import Comparison, compare, compare_paired

Cell = dict[str, Any]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    value: Callable[[Cell], float]  # the value shown and compared
    higher_is_better: bool = False  # req/s; costs (µs/request, latency) are lower-is-better


METRICS = {
    "rps": Metric("req/s", "req/s", lambda c: c["rps"], higher_is_better=True),
    "cpu": Metric("server CPU", "µs/req", lambda c: c["cpu_us_per_request"]["server"]),
    "p50": Metric("p50", "µs", lambda c: c["latency_us"]["p50"]),
    "p99": Metric("p99", "µs", lambda c: c["latency_us"]["p99"]),
}


@dataclass(frozen=True)
class Row:
    scenario: str
    users: int
    a: str  # label of A
    b: str  # label of B
    a_value: float
    b_value: float
    comparison: Comparison


def _valid(cells: list[Cell]) -> dict[tuple[str, str, int], list[Cell]]:
    groups: dict[tuple[str, str, int], list[Cell]] = {}
    for cell in cells:
        if cell["status"] == "ok":
            groups.setdefault((cell["variant"], cell["scenario"], cell["users"]), []).append(cell)
    return groups


def _row(
    scenario: str,
    users: int,
    a: str,
    b: str,
    ca: list[Cell],
    cb: list[Cell],
    m: Metric,
    *,
    paired: bool,
) -> Row:
    """B against A; *paired*: by round (``trial``) where both have a valid cell in it."""
    by_round = {c["trial"]: c for c in ca if "trial" in c}
    pairs = [(m.value(by_round[c["trial"]]), m.value(c)) for c in cb if c.get("trial") in by_round]
    if paired and len(pairs) >= 2:
        comparison = compare_paired(pairs, higher_is_better=m.higher_is_better, unit=m.unit)
    else:
        a_values, b_values = [m.value(c) for c in ca], [m.value(c) for c in cb]
        comparison = compare(a_values, b_values, higher_is_better=m.higher_is_better, unit=m.unit)
    return Row(
        scenario, users, a, b,
        statistics.median(m.value(c) for c in ca), statistics.median(m.value(c) for c in cb),
        comparison,
    )  # fmt: skip


def co_rows(doc: dict[str, Any]) -> list[Row]:
    """Every co-scheduled comparison of the run as rows (bench/common/pairs.py)."""
    return [Row(c.scenario, c.users, c.a, c.b, c.a_value, c.b_value, c.comparison)
            for c in co_comparisons(doc)]  # fmt: skip


def co_row(rows: list[Row], a: str, b: str, scenario: str, users: int) -> Row | None:
    """B against A from *rows*; the row of A against B turned around where only that exists."""
    for r in rows:
        if (r.scenario, r.users, r.a, r.b) == (scenario, users, a, b):
            return r
    for r in rows:
        if (r.scenario, r.users, r.a, r.b) == (scenario, users, b, a):
            return Row(scenario, users, a, b, r.b_value, r.a_value, r.comparison.inverted())
    return None


def within(run: Run, baseline: str, metric: Metric) -> list[Row]:
    if run.doc.get("coscheduled") and metric is METRICS["rps"]:
        co = co_rows(run.doc)
        keys = sorted({(r.scenario, r.users, name) for r in co for name in (r.a, r.b)})
        found = [co_row(co, baseline, name, scenario, users)
                 for scenario, users, name in keys if name != baseline]  # fmt: skip
        return [r for r in found if r is not None]
    groups = _valid(run.cells)
    rows = []
    for (variant, scenario, users), cells in sorted(groups.items(), key=lambda kv: kv[0][1:]):
        base = groups.get((baseline, scenario, users))
        if variant == baseline or not base:
            continue
        rows.append(_row(scenario, users, baseline, variant, base, cells, metric, paired=True))
    return rows


def between(run_a: Run, run_b: Run, metric: Metric) -> list[Row]:
    groups_a, groups_b = _valid(run_a.cells), _valid(run_b.cells)
    rows = []
    for key in sorted(groups_b, key=lambda k: (k[1], k[2], k[0])):
        if key in groups_a:
            variant, scenario, users = key
            rows.append(
                _row(
                    scenario,
                    users,
                    variant,
                    variant,
                    groups_a[key],
                    groups_b[key],
                    metric,
                    paired=False,  # trials of two runs share no round
                )
            )
    return rows


def table(rows: list[Row], metric: Metric, title: str) -> Table:
    out = Table(title=title)
    for column in ("scenario", "users", "A", "B", f"A {metric.unit}", f"B {metric.unit}", "B vs A"):
        out.add_column(
            column, justify="right" if "users" in column or metric.unit in column else "left"
        )
    for row in rows:
        out.add_row(
            row.scenario, str(row.users), row.a, row.b,
            f"{row.a_value:,.0f}", f"{row.b_value:,.0f}", row.comparison.verdict(),
        )  # fmt: skip
    return out


def run(args: argparse.Namespace) -> int:
    if args.metric == "instructions":  # valgrind counts in cost.json: their own comparison
        from bench.cost import compare as cost_compare

        return cost_compare.run(args)
    paths: list[Path] = args.runs or [latest_run()]
    runs = [Run.load(path) for path in paths]
    metric = METRICS[args.metric]
    if len(runs) == 1:
        (only,) = runs
        variants = series_names(only.doc)
        baseline = args.baseline or ("raw" if "raw" in variants else variants[0])
        if baseline not in variants:
            console.print(f"sessionbench: error: --baseline {baseline!r} is not in {paths[0]}")
            return 2
        rows = within(only, baseline, metric)
        title = (
            f"{paths[0].name}: {metric.name}, every variant (B) against {baseline} (A), "
            "paired by round"
        )
    else:
        rows = between(runs[0], runs[1], metric)
        title = f"{metric.name}: {paths[1].name} (B) against {paths[0].name} (A), unpaired"
    if not rows:
        console.print("sessionbench: nothing to compare (no valid cells in common)")
        return 1
    console.print(table(rows, metric, title))
    if args.fail_above is not None:
        regressions = [
            r for r in rows
            if r.comparison.significant and r.comparison.regression_percent > args.fail_above
        ]  # fmt: skip
        unresolved = sum(not (r.comparison.significant or r.comparison.equivalent) for r in rows)
        if unresolved:
            console.print(f"{unresolved} of {len(rows)} comparisons not resolved by these runs")
        for r in regressions:
            console.print(
                f"regression: {r.b} {r.scenario} {r.users} users: {r.comparison.verdict()}"
            )
        return 1 if regressions else 0
    return 0
