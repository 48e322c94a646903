"""Comparison statistics: verdicts right where the answer is known, intervals with coverage."""

import math
import random
import re
from pathlib import Path

import pytest

from bench.common.results import Run
from bench.common.stats import (
    MARGIN_PERCENT,
    compare,
    compare_paired,
    detectable_percent,
    fairness,
    median_ci,
    median_interval,
    order_coverage,
    trials_to_resolve,
)
from bench.load.verdicts import METRICS, within

# The committed reference (results/reference, mixed, 128 users), per round 1..5.
DEPENDS_MIXED = [1378.0, 1711.0, 1661.0, 1732.0, 1689.0]
RAW_MIXED = [3375.0, 3658.0, 4230.0, 4054.0, 4271.0]


def noisy(center: float, n: int = 7, spread: float = 0.02, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def run_of(series: dict[str, list[float]]) -> Run:
    """A run document whose cells are req/s per round (trial) of each series."""
    cells = [
        {"variant": name, "scenario": "read", "users": 32, "trial": t + 1, "status": "ok",
         "rps": rps, "cpu_us_per_request": {"server": 1e6 / rps}, "latency_us": {}}
        for name, values in series.items() for t, rps in enumerate(values)
    ]  # fmt: skip
    doc = {"schema": "sessionbench.run/2", "status": "complete", "environment": {},
           "variants": {}, "settings": {"variants": list(series)}, "cells": cells}  # fmt: skip
    return Run(Path("/nonexistent"), doc)


# --- 15.1: the change is printed in the metric the column names --------------------------------


def test_req_s_change_is_in_req_s_on_the_references_raw_vs_depends_mixed() -> None:
    (row,) = within(run_of({"depends": DEPENDS_MIXED, "raw": RAW_MIXED}), "depends", METRICS["rps"])
    assert (row.a_value, row.b_value) == (1689, 4054)
    verdict = row.comparison.verdict()
    assert verdict.startswith("2.40x faster (+140 % req/s, CI +1"), verdict
    assert row.comparison.change_percent == pytest.approx(140, abs=1)


def test_fewer_req_s_is_a_negative_change_and_slower() -> None:
    result = compare(noisy(1000), noisy(903, seed=2), higher_is_better=True, unit="req/s")
    assert result.significant and result.regression_percent == pytest.approx(9.7, abs=1)
    assert re.match(r"1\.1\dx slower \(−9 % req/s, CI −1\d…−\d %", result.verdict())


def test_costs_stay_costs() -> None:
    """CPU µs/request and latency: a lower value is faster, and its change is negative."""
    (row,) = within(run_of({"depends": DEPENDS_MIXED, "raw": RAW_MIXED}), "depends", METRICS["cpu"])
    assert row.comparison.verdict().startswith("2.40x faster (−58 % µs/req")
    slower = compare(noisy(100), noisy(120, seed=2))
    assert slower.significant and re.fullmatch(
        r"1\.2\dx slower \(\+2\d %, CI \+\d+…\+\d+ %; unpaired, n=7/7; min\. detectable .+\)",
        slower.verdict(),
    )


# --- 15.2: the interval of a median has a stated, exact coverage --------------------------------


def test_median_interval_is_the_order_statistic_interval_with_exact_coverage() -> None:
    five = median_interval([14, 10, 12, 11, 13])
    assert (five.median, five.low, five.high, five.coverage) == (12, 10, 14, 0.9375)
    assert median_interval([1, 2, 3]).coverage == 0.75
    nine = median_interval(range(1, 10))  # k = 2: [x(2), x(8)] is the narrowest with ≥ 95 %
    assert (nine.low, nine.high) == (2, 8) and nine.coverage == pytest.approx(0.9609375)
    assert median_ci(range(1, 10)) == (5, 2, 8)
    assert median_ci([5.0]) == (5.0, 5.0, 5.0) and median_interval([5.0]).coverage == 0


def test_stated_coverage_holds_by_simulation() -> None:
    rng = random.Random(7)
    for n in (3, 5, 9):
        hits = 0
        for _ in range(4000):
            interval = median_interval([rng.lognormvariate(0, 0.3) for _ in range(n)])
            hits += interval.low <= 1.0 <= interval.high  # the true median of lognormal(0, σ)
        assert hits / 4000 == pytest.approx(order_coverage(n, 1 if n < 9 else 2), abs=0.02)


def test_overlapping_intervals_do_not_establish_an_order() -> None:
    a, b, c = (
        median_interval([10, 11, 12]),
        median_interval([11.5, 13, 14]),
        median_interval([20, 21, 22]),
    )
    assert a.overlaps(b) and b.overlaps(a) and not a.overlaps(c)


# --- 15.13: identical samples measure no noise ------------------------------------------------


def test_identical_samples_are_never_significant() -> None:
    for n in (2, 3):
        result = compare([100.0] * n, [110.0] * n)
        assert not result.significant and not result.equivalent
        assert result.verdict().startswith("not resolved by this run (+10 %")
        assert "no noise measured" in result.verdict()
    same_ratio = compare_paired([(100, 110), (200, 220), (150, 165)])
    assert not same_ratio.significant and "no noise measured" in same_ratio.verdict()


# --- 12.4: paired by round; three kinds of verdict; never "no significant difference" ----------


def test_pairing_by_round_cancels_the_drift_between_rounds() -> None:
    drift = [1.0, 1.25, 0.8, 1.15, 0.9]  # the machine's speed per round, shared by A and B
    rng = random.Random(3)
    a = [2000 * d * (1 + rng.uniform(-0.005, 0.005)) for d in drift]
    b = [2060 * d * (1 + rng.uniform(-0.005, 0.005)) for d in drift]  # B is 3 % faster
    unpaired = compare(a, b, higher_is_better=True)
    assert not unpaired.significant and unpaired.verdict().startswith("not resolved")
    (row,) = within(run_of({"a": a, "b": b}), "a", METRICS["rps"])
    assert row.comparison.paired and row.comparison.significant
    assert row.comparison.verdict().startswith("1.03x faster (+3 % req/s")
    assert "paired by round, n=5" in row.comparison.verdict()


def test_equivalence_only_when_the_interval_lies_within_the_margin() -> None:
    tight = compare_paired(
        [
            (x, x * f)
            for x, f in zip(noisy(1000, 6), [1.01, 0.99, 1.0, 1.02, 0.98, 1.0], strict=True)
        ]
    )
    assert tight.equivalent and tight.verdict().startswith(
        f"no difference within ±{MARGIN_PERCENT:g} %"
    )
    loose = compare_paired([(1000, 1000), (1000, 1150), (1000, 900)])
    assert not loose.significant and not loose.equivalent
    verdict = loose.verdict()
    assert verdict.startswith("not resolved by this run (+1 %") and "no significant" not in verdict
    assert re.search(r"~\d+ rounds would resolve a 5 % difference\)$", verdict)


def test_three_trials_can_be_significant_now() -> None:
    """Mann-Whitney U could not go below p = 0.10 at 3 + 3; a 2x difference is resolved."""
    result = compare([100, 101, 102], [200, 201, 202])
    assert result.significant and result.verdict().startswith("1.99x slower (+99 %")


def test_minimum_detectable_difference_and_trials_needed_agree() -> None:
    sd = 0.06  # log sd of per-round ratios
    n = trials_to_resolve(sd, paired=True)
    assert n is not None and n > 5
    assert detectable_percent(sd, n, paired=True) <= MARGIN_PERCENT  # type: ignore[operator]
    assert detectable_percent(sd, n - 1, paired=True) > MARGIN_PERCENT  # type: ignore[operator]
    result = compare_paired([(1, math.exp(v)) for v in (0.1, 0.0, -0.05, 0.08, 0.02)])
    assert (
        result.detectable_percent is not None
        and f"~{result.trials_needed} rounds" in result.verdict()
    )
    assert f"min. detectable {result.detectable_percent:.2g} %" in result.verdict()


def test_single_values_have_no_interval() -> None:
    result = compare([100], [110])
    assert result.low is None and "n=1 on a side" in result.verdict()
    with pytest.raises(ValueError):
        compare([], [1.0])


def test_fairness_index() -> None:
    assert fairness([10, 10, 10, 10], 4) == {"jain": 1.0, "min": 10, "max": 10}
    starved = fairness([40], 4)  # one user got everything, three completed nothing
    assert starved["jain"] == pytest.approx(0.25) and starved["min"] == 0
    assert 0.25 < fairness([1, 2, 3, 30], 4)["jain"] < 0.5
    assert fairness([], 2)["jain"] == 0.0
