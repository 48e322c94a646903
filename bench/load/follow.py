"""Follow mode (``run --follow``): every request started in the window, measured to its end.

A short window censors the starving strategies' tails: "≥ 4.99 s" is the window's length,
not the wait's. In follow mode the recorder (``bench/load/recorder.py``) keeps the users
running after the window until every request *started* inside it has ended, or
``pool_timeout`` + :data:`FOLLOW_MARGIN` has passed. Each such request then has its
full latency, or is a timeout: the server answered 503 "pool timeout"
(``variants.app``) because no pooled connection became free within ``pool_timeout``.
Nothing is censored unless a request outlives the limit (a stall): the cell then says so.

The cell's latency figures, histogram, fairness and Little's law come from that cohort;
req/s and CPU per request still come from the requests completed in the window.

**Window rule** (:data:`WINDOW_RULE`): with the tail resolved by following, the window
only has to sample enough. Each user must start at least :data:`MIN_PER_USER` requests in
it on average, and the longest latency must stay under :data:`MAX_WAIT_FRACTION` of the
window, so that it holds several of the longest waits rather than one and a user starved
for one episode is not scored on that episode alone. (Closed-loop counts are far more
regular than Poisson ones: FIFO-queue cells scored Jain 0.997–0.998 at 13–17 requests per
user, so the count half is about starvation episodes averaging out, not counting noise.)
A cell that breaks the rule is valid, with a warning saying which half failed. Sizing:
window ≥ max(MIN_PER_USER × users / req/s, longest wait / MAX_WAIT_FRACTION); for the
reference's overload pass (read, 128 users, pool 10; 480–940 req/s and longest waits of
~5 s on the reference machine) that is max(13.3 s, 10.8 s): ``scripts/reference`` uses 20 s.
"""

from __future__ import annotations

import os
from typing import Any

from bench.common import histograms, stats
from bench.load import tails

FOLLOW_MARGIN = 5.0  # s past pool_timeout: the 503 itself, and a loaded machine's slack
POOL_TIMEOUT_ENV = "SESSIONBENCH_POOL_TIMEOUT"  # read by variants.settings too
DEFAULT_POOL_TIMEOUT = 30.0  # variants.settings.Settings.pool_timeout
MIN_PER_USER = 50
MAX_WAIT_FRACTION = 0.5
WINDOW_RULE = (
    f"each user starts ≥ {MIN_PER_USER} requests in the window on average, and the longest "
    f"latency is < {MAX_WAIT_FRACTION:g} × the window"
)


def pool_timeout() -> float:
    """The servers' ``pool_timeout`` (they inherit this process's environment)."""
    return float(os.environ.get(POOL_TIMEOUT_ENV, DEFAULT_POOL_TIMEOUT))


def limit(timeout: float) -> float:
    """How long after the window the recorder follows its requests at most."""
    return timeout + FOLLOW_MARGIN


def cell_fields(
    recorded: dict[str, Any], *, users: int, rps: float, timeout: float
) -> dict[str, Any]:
    """The cell fields of a followed window (*recorded*: the recorder's ``follow`` result).

    Overrides latency_us, latency_completed_us, censored, tail_resolved, tail_check,
    censored_histogram, histogram, fairness and littles_law with the cohort's; adds
    started_in_window, timeouts and follow. Timeouts count in the latency figures at
    their latency (what their clients waited)."""
    answered = histograms.merge([recorded["histogram"], recorded["timeouts_histogram"]])
    unfinished = histograms.merge([recorded["unfinished_histogram"]])
    timed_out = histograms.merge([recorded["timeouts_histogram"]])
    tail = tails.censoring(answered, unfinished)
    started = answered.get_total_count() + unfinished.get_total_count()
    count = timed_out.get_total_count()
    return {
        **tail,
        "histogram": histograms.encode(answered),
        "fairness": stats.fairness(recorded["per_user"], users),
        "littles_law": tails.littles_law(users, rps, tail["latency_us"]["mean"]),
        "started_in_window": started,
        "timeouts": {
            "count": count,
            "of": started,
            "at_s": timeout,
            "max_us": int(timed_out.get_max_value()) if count else 0,
            "by_phase": recorded["timeouts_by_phase"],
        },
        "follow": {
            "limit_s": recorded["limit_s"],
            "seconds": recorded["seconds"],
            "complete": recorded["complete"],
            "window_rule": WINDOW_RULE,
        },
    }


def window_notes(cell: dict[str, Any], duration: float) -> list[str]:
    """Warnings of a followed cell: the window rule broken, requests left unfinished."""
    notes = []
    per_user = cell["started_in_window"] / cell["users"] if cell.get("users") else 0.0
    if per_user < MIN_PER_USER:
        notes.append(
            f"window short for fairness: {per_user:.0f} requests per user started in it "
            f"(rule: ≥ {MIN_PER_USER})"
        )
    longest = cell["latency_us"]["max"] / 1e6
    if longest >= MAX_WAIT_FRACTION * duration:
        notes.append(
            f"window short for the tail: longest latency {longest:.1f} s ≥ "
            f"{MAX_WAIT_FRACTION:g} × the {duration:g}-s window"
        )
    if not cell["follow"]["complete"]:
        notes.append(
            f"{cell['censored']['count']} window-started requests still in flight "
            f"{cell['follow']['limit_s']:g} s after the window (a stall?): censored at their age"
        )
    return notes


def timeouts_text(cell: dict[str, Any]) -> str:
    """``"k of n timed out at 30 s"`` ('' when the cell was not followed or none did)."""
    out = cell.get("timeouts")
    if not out or not out["count"]:
        return ""
    return f"{out['count']} of {out['of']} timed out at {out['at_s']:g} s"
