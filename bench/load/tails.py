"""Censored latency and Little's law: what a cell's latency figures can and cannot claim.

A request still in flight when the window closes is *censored*: the recorder knows only
its age then, a lower bound of its latency. A cell reports its percentiles with every
censored request counted at its age (``latency_us``, a lower bound) and without them
(``latency_completed_us``).

**The tail rule** (``TAIL_RULE``): a cell's tail is *resolved* when counting the
censored requests at their age raises none of p50, p90, p99, p99.9 and max by more than
``TAIL_TOLERANCE`` (5 %) above the completed-only value. Under load some requests are
always in flight at the end (about one per user); when they are as young as ordinary
requests they raise nothing and the rule holds. (They can *lower* a percentile: requests
caught mid-way are younger than finished ones. That biases a low percentile down when
few requests completed — one in-flight request per user against a short or slow
window — but says nothing about the tail; ``latency_completed_us`` shows both.) When
clients starve, the censored ones are the oldest requests of the run: they raise p99.9
or the max (a censored age above the
completed max means the true max is unknown) and the rule fails. An unresolved figure
is printed as "≥ X (censored)". The rule cannot see a request whose true latency would
have moved a percentile although its age did not; it is a lower-bound check, like the
figures it guards.

**Little's law** (``LITTLE_TOLERANCE``): with zero think time each user always has one
request outstanding, so the mean latency must be users / throughput. The ratio of the
recorded mean (censored included) to that figure is recorded per cell; outside
[0.9, 1.1] the cell gets a warning, not an invalid status: a strategy that starves some
clients really delivers that mean and that throughput (a real result, which the tail
rule and fairness already report); the ratio says the recorded latencies leave out time
clients spent waiting (before the window, or beyond it).
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from bench.common import histograms

TAIL_TOLERANCE = 0.05
TAIL_KEYS = ("p50", "p90", "p99", "p99.9", "max")
TAIL_RULE = (
    "resolved when counting every censored request at its age raises none of "
    f"{', '.join(TAIL_KEYS)} by more than {TAIL_TOLERANCE:.0%} above the completed-only value"
)
LITTLE_TOLERANCE = 0.10


def censoring(completed: HdrHistogram, censored: HdrHistogram) -> dict[str, Any]:
    """The cell fields of latency under censoring (contract: latency_us … tail_check)."""
    combined = histograms.merge([histograms.encode(completed), histograms.encode(censored)])
    with_censored = histograms.summary(combined)
    completed_only = histograms.summary(completed)
    shifts = [
        (with_censored[k] - completed_only[k]) / completed_only[k] if completed_only[k] else 0.0
        for k in TAIL_KEYS
    ]
    worst = max(0.0, *shifts) if censored.get_total_count() and completed.get_total_count() else 0.0
    worst_key = TAIL_KEYS[shifts.index(max(shifts))] if worst > 0 else None
    if censored.get_total_count() and not completed.get_total_count():
        worst = float("inf")  # nothing completed: every figure is a lower bound
    return {
        "latency_us": with_censored,
        "latency_completed_us": completed_only,
        "censored": {
            "count": censored.get_total_count(),
            "max_age_us": int(censored.get_max_value()) if censored.get_total_count() else 0,
        },
        "tail_resolved": worst <= TAIL_TOLERANCE,
        "tail_check": {
            "rule": TAIL_RULE,
            "worst_shift_percent": round(100 * worst, 2) if worst != float("inf") else None,
            "worst_figure": worst_key,
        },
        "censored_histogram": histograms.encode(censored),
    }


def littles_law(users: int, rps: float, recorded_mean_us: float) -> dict[str, Any]:
    """Recorded mean latency against users / throughput (zero think time)."""
    expected = users / rps * 1e6 if rps else 0.0
    ratio = recorded_mean_us / expected if expected else 0.0
    return {
        "expected_mean_us": expected,
        "recorded_mean_us": float(recorded_mean_us),
        "ratio": ratio,
        "ok": abs(ratio - 1) <= LITTLE_TOLERANCE,
    }
