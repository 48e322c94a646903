"""A repeated pitfall cell: n runs of one scenario on one variant folded into one record.

An intermittent failure (a leak seen in one run of two) needs a count, not one draw: the
cell's outcome is the worst any run showed, with how many runs showed it ("broken 2 of
5"), and its numbers and series are those of the first run that showed it. Every run's
outcome, summary, numbers and seconds stay in the cell's ``runs``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from bench.pitfalls.probe import BROKEN, DEGRADED, ERROR, OK, SKIPPED

SEVERITY = (BROKEN, ERROR, DEGRADED, OK, SKIPPED)
"""Outcomes from worst to best: a run that crashed (error) says less than one that broke,
but more than one that merely degraded."""

RUN_FIELDS = ("outcome", "summary", "numbers", "seconds", "notes")
"""What each run keeps in the aggregated cell's ``runs`` (the series only for the worst)."""


def worst(outcomes: list[str]) -> str:
    """The most severe of *outcomes* (``SEVERITY`` order)."""
    return min(outcomes, key=SEVERITY.index)


def tally(cell: dict[str, Any]) -> str:
    """:func:`tally_text` of a cell being aggregated (the report reads the typed cell)."""
    runs = len(cell["runs"]) if "runs" in cell else None
    return tally_text(cell["outcome"], cell.get("tally") or {}, runs)


def tally_text(outcome: str, counts: Mapping[str, int], runs: int | None) -> str:
    """``broken 2 of 5, degraded 3 of 5``; ``degraded (n=1)`` for a single run; ``""`` for a
    cell that was not repeated (*runs* None)."""
    if runs is None:
        return ""
    if runs == 1:
        return f"{outcome} (n=1)"
    return ", ".join(f"{o} {counts[o]} of {runs}" for o in SEVERITY if o in counts)


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell from *runs* (each a cell record of the same variant, scenario and setting).

    Keys the runs share (variant, scenario, pre-ping…) are taken from the first run.
    ``outcome``: the worst; ``worst``: that outcome with its count and n; ``tally``: every
    outcome's count; ``summary``, ``numbers``, ``series``: the first worst run's; ``notes``:
    every run's, in order, each once; ``seconds``: the total.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    outcome = worst([r["outcome"] for r in runs])
    first = next(r for r in runs if r["outcome"] == outcome)
    counts = Counter(r["outcome"] for r in runs)
    cell = {k: v for k, v in runs[0].items() if k not in (*RUN_FIELDS, "series", "log_tail")}
    cell |= {
        "outcome": outcome,
        "summary": first["summary"],
        "numbers": first.get("numbers", {}),
        "notes": list(dict.fromkeys(n for r in runs for n in r.get("notes", []))),
        "seconds": sum(r.get("seconds", 0.0) for r in runs),
        "worst": {"outcome": outcome, "count": counts[outcome], "of": len(runs)},
        "tally": {o: counts[o] for o in SEVERITY if o in counts},
        "runs": [{k: r[k] for k in RUN_FIELDS if k in r} for r in runs],
    }
    for key in ("series", "log_tail"):
        if key in first:
            cell[key] = first[key]
    if len(runs) > 1:
        cell["summary"] = f"{tally(cell)}; worst run: {first['summary']}"
    return cell
