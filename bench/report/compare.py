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
from pathlib import Path

from rich.table import Table

from bench.common.console import console
from bench.common.results import Run, latest_run
from bench.load.verdicts import METRICS, Metric, Row, between, within


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
        variants = only.file.series_names()
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
