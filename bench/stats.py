"""Statistics for comparisons: ratio of medians with a bootstrap CI, Mann-Whitney U, a verdict.

Every metric is compared as a *cost* (lower is better): time per request (1 / req/s),
server CPU µs per request, or a latency percentile. A ratio above 1 means B costs more
than A ("slower"). A difference is significant only when the two-sided Mann-Whitney U
test rejects equality at ``alpha`` *and* the bootstrap CI of the ratio excludes 1.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
RESAMPLES = 4000


@dataclass(frozen=True)
class Comparison:
    """B against A on a cost metric."""

    ratio: float  # median(B) / median(A)
    low: float | None  # CI of the ratio (None: too few samples)
    high: float | None
    p_value: float | None
    n_a: int
    n_b: int

    @property
    def significant(self) -> bool:
        return (
            self.p_value is not None
            and self.p_value < ALPHA
            and self.low is not None
            and self.high is not None
            and not self.low <= 1.0 <= self.high
        )

    @property
    def change_percent(self) -> float:
        return 100 * (self.ratio - 1)

    def verdict(self) -> str:
        """E.g. ``1.07x slower (+7 %, CI +3…+11 %)`` or ``~ no significant difference``."""
        ci = ""
        if self.low is not None and self.high is not None:
            ci = f", CI {_signed(100 * (self.low - 1))}…{_signed(100 * (self.high - 1))} %"
        detail = f"({_signed(self.change_percent)} %{ci})"
        if not self.significant:
            if self.p_value is None:
                why = f"; n={self.n_a}/{self.n_b}: too few trials to test"
            else:
                why = f"; p={self.p_value:.2f}, n={self.n_a}/{self.n_b}"
            return f"~ no significant difference {detail[:-1]}{why})"
        if self.ratio >= 1:
            return f"{self.ratio:.2f}x slower {detail}"
        return f"{1 / self.ratio:.2f}x faster {detail}"


def fairness(per_user: Sequence[int], users: int) -> dict[str, float]:
    """How evenly the window's requests went to the *users* clients.

    ``jain`` is Jain's index (1 = every user served equally, 1/n = one user got all);
    users that completed nothing in the window count as zeros.
    """
    counts = [*per_user, *[0] * max(0, users - len(per_user))]
    total = sum(counts)
    squares = sum(c * c for c in counts)
    jain = total * total / (len(counts) * squares) if squares else 0.0
    return {"jain": jain, "min": min(counts, default=0), "max": max(counts, default=0)}


def _signed(value: float) -> str:
    return f"{value:+.0f}".replace("-", "−")


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.median(b, axis=axis) / np.median(a, axis=axis))


def compare(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> Comparison:
    """B's cost relative to A's, from their trials (each needs ≥ 1 value)."""
    if not a or not b:
        raise ValueError("both samples need at least one value")
    ratio = statistics.median(b) / statistics.median(a)
    if len(a) < 2 or len(b) < 2:
        return Comparison(ratio, None, None, None, len(a), len(b))
    if len(set(a)) == 1 and len(set(b)) == 1:
        # Degenerate (identical values): the bootstrap has no spread to resample.
        p = 1.0 if a[0] == b[0] else 0.0
        return Comparison(ratio, ratio, ratio, p, len(a), len(b))
    result = stats.bootstrap(
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float)),
        _ratio_of_medians,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    p_value = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    low, high = result.confidence_interval
    return Comparison(ratio, float(low), float(high), p_value, len(a), len(b))


def median_ci(values: Sequence[float], *, seed: int = 0) -> tuple[float, float, float]:
    """(median, CI low, CI high) by bootstrap; the CI collapses to the value for n < 2."""
    median = float(statistics.median(values))
    if len(values) < 2 or len(set(values)) == 1:
        return median, median, median
    result = stats.bootstrap(
        (np.asarray(values, dtype=float),),
        np.median,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return median, float(result.confidence_interval.low), float(result.confidence_interval.high)
