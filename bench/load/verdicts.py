"""Verdicts between the series of a load run, or between the same cells of two runs.

Within one run every series is set against a baseline in each (scenario, users): from
the co-scheduled pass where the run has one (bench/load/coschedule.py: window pairs measured
on one core at the same instants, req/s per core, Holm-corrected over every co-scheduled
comparison of the run), else paired by round (the cell's ``trial``: each series ran once
per round); between two runs every cell of B against the same cell of A, unpaired. Only
valid trials count. Computed here once: the load section's tables, the scorecard, the
questions and ``sessionbench compare`` all read these rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.common.co_record import CoRecord
from bench.common.pairs import co_comparisons
from bench.common.result_files import LoadCell
from bench.common.results import Run
from bench.common.stats import Comparison, compare, compare_paired

Cell = LoadCell


def _given(value: float | None) -> float:
    if value is None:
        raise ValueError("compared a value the cell did not measure")
    return value


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    value: Callable[[Cell], float]  # the value shown and compared
    higher_is_better: bool = False  # req/s; costs (µs/request, latency) are lower-is-better


METRICS = {
    "rps": Metric("req/s", "req/s", lambda c: c.measured_rps, higher_is_better=True),
    "cpu": Metric("server CPU", "µs/req", lambda c: _given(c.cpu_us_per_request["server"])),
    "p50": Metric("p50", "µs", lambda c: c.latency_us["p50"]),
    "p99": Metric("p99", "µs", lambda c: c.latency_us["p99"]),
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
        if cell.ok:
            groups.setdefault((cell.variant, cell.scenario, cell.users), []).append(cell)
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
    by_round = {c.trial: c for c in ca if c.trial is not None}
    pairs = [(m.value(by_round[c.trial]), m.value(c)) for c in cb if c.trial in by_round]
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


def co_rows(co: CoRecord | None) -> list[Row]:
    """Every co-scheduled comparison of the run as rows (bench/common/pairs.py)."""
    return [Row(c.scenario, c.users, c.a, c.b, c.a_value, c.b_value, c.comparison)
            for c in co_comparisons(co)]  # fmt: skip


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
    """Every series of *run* against *baseline* in *metric*, per (scenario, users): computed
    once per run, baseline and metric (the tables, the scorecard and the questions share it)."""
    key = ("within", baseline, metric.name)
    if key not in run.memo:
        run.memo[key] = _within(run, baseline, metric)
    rows: list[Row] = run.memo[key]
    return rows


def _within(run: Run, baseline: str, metric: Metric) -> list[Row]:
    if run.file.coscheduled is not None and metric is METRICS["rps"]:
        co = co_rows(run.file.coscheduled)
        keys = sorted({(r.scenario, r.users, name) for r in co for name in (r.a, r.b)})
        found = [co_row(co, baseline, name, scenario, users)
                 for scenario, users, name in keys if name != baseline]  # fmt: skip
        return [r for r in found if r is not None]
    groups = _valid(run.file.cells)
    rows = []
    for (variant, scenario, users), cells in sorted(groups.items(), key=lambda kv: kv[0][1:]):
        base = groups.get((baseline, scenario, users))
        if variant == baseline or not base:
            continue
        rows.append(_row(scenario, users, baseline, variant, base, cells, metric, paired=True))
    return rows


def between(run_a: Run, run_b: Run, metric: Metric) -> list[Row]:
    groups_a, groups_b = _valid(run_a.file.cells), _valid(run_b.file.cells)
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
