"""Comparison statistics: verdicts are right where the answer is known."""

import random
import re

import pytest

from bench.stats import compare, fairness, median_ci


def noisy(center: float, n: int = 7, spread: float = 0.02, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_identical_samples_are_no_significant_difference() -> None:
    sample = noisy(100)
    result = compare(sample, list(sample))
    assert not result.significant
    assert result.verdict().startswith("~ no significant difference")
    assert result.low is not None and result.low <= 1 <= (result.high or 0)


def test_a_clear_20_percent_shift_is_significant() -> None:
    result = compare(noisy(100), noisy(120, seed=2))
    assert result.significant and 1.15 < result.ratio < 1.25
    assert re.fullmatch(r"1\.2\dx slower \(\+2\d %, CI \+\d+…\+\d+ %\)", result.verdict())


def test_faster_is_said_so() -> None:
    result = compare(noisy(100), noisy(80, seed=3))
    assert result.significant and 0.75 < result.ratio < 0.85
    assert re.fullmatch(r"1\.\d\dx faster \(−\d+ %, CI −\d+…−\d+ %\)", result.verdict())


def test_noise_larger_than_the_shift_is_not_significant() -> None:
    result = compare(noisy(100, spread=0.3), noisy(103, spread=0.3, seed=4))
    assert not result.significant


def test_three_trials_can_never_be_significant() -> None:
    """Mann-Whitney U's smallest two-sided p with 3 + 3 values is 0.1."""
    result = compare([100, 101, 102], [200, 201, 202])
    assert not result.significant and "p=0.10, n=3/3" in result.verdict()


def test_single_values_have_no_ci() -> None:
    result = compare([100], [110])
    assert result.low is None and "too few trials" in result.verdict()
    with pytest.raises(ValueError):
        compare([], [1.0])


def test_median_ci_brackets_the_median() -> None:
    m, low, high = median_ci([10, 11, 12, 13, 14, 15, 16])
    assert low <= m == 13 <= high
    assert median_ci([5.0]) == (5.0, 5.0, 5.0)


def test_fairness_index() -> None:
    assert fairness([10, 10, 10, 10], 4) == {"jain": 1.0, "min": 10, "max": 10}
    starved = fairness([40], 4)  # one user got everything, three completed nothing
    assert starved["jain"] == pytest.approx(0.25) and starved["min"] == 0
    assert 0.25 < fairness([1, 2, 3, 30], 4)["jain"] < 0.5
    assert fairness([], 2)["jain"] == 0.0
