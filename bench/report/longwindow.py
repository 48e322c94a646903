"""Tails and fairness from a long-window overload pass, never from short windows.

A starving client completes a handful of requests in a 1.5 s window, so Jain's index
and the longest wait measured there say more about the window than about the strategy.
The scorecard takes p99.9, max and fairness only from a run folder whose users outnumber
the pool (the overload pass, given to ``sessionbench report`` with ``--readme-also``) and
only from cells whose windows can show them (``bench.common.results.TAIL_RULE``), per
strategy on the same pool queue and driver as the scorecard's series; a strategy that pass
did not run, or ran in windows too short, has no tail. A followed pass (``run --follow``)
also counts the requests that hit ``pool_timeout``: shown as a result ("k of n timed out at
30 s") beside p99.9 and max.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common.result_files import LoadCell, RunFile, SeriesInfo
from bench.common.results import Run, censored_percentiles, percentile, tail_visible
from bench.common.run_folder import RUN, RunFolder

Key = tuple[str, str, str]  # variant, pool queue, driver


def key(info: SeriesInfo | None, series: str) -> Key:
    """What must match between a scorecard series and a series of the long-window pass."""
    info = info or SeriesInfo()
    return (
        str(info.variant if info.recorded("variant") else series.split("+", 1)[0]),
        str(info.pool_queue or "sqlalchemy"),
        str(info.driver or "asyncpg"),
    )


@dataclass(frozen=True)
class Tail:
    """One series' tail in the long-window pass (µs; censored: keys only lower bounds)."""

    fairness: float | None
    p999_us: float
    max_us: float
    censored: frozenset[str]
    users: int
    pool: int | None
    window_s: float
    folder: str
    timeouts: Timeouts | None = None
    """Requests of the followed windows that hit ``pool_timeout`` (None: not followed)."""


@dataclass(frozen=True)
class Timeouts:
    """Pool timeouts over a series' valid followed trials: *count* of *of* at *at_s*."""

    count: int
    of: int
    at_s: float

    def text(self) -> str:
        """``"3 of 1,204 timed out at 30 s"``; ``""`` when none did."""
        return f"{self.count:,} of {self.of:,} timed out at {self.at_s:g} s" if self.count else ""


def timeouts(valid: Sequence[LoadCell]) -> Timeouts | None:
    """Pool timeouts summed over *valid* followed cells (``run --follow``); None when none
    of them was followed."""
    followed = [c.timeouts for c in valid if c.timeouts is not None]
    if not followed:
        return None
    return Timeouts(
        count=sum(int(t.count) for t in followed),
        of=sum(int(t.of) for t in followed),
        at_s=float(followed[0].at_s),
    )


def _pool_size(doc: RunFile, series: str) -> int | None:
    info = doc.variants.get(series)
    return info.pool_size if info else None


def _is_overload(doc: RunFile) -> bool:
    return any(c.users > (_pool_size(doc, c.variant) or c.users) for c in doc.cells)


def tails(folders: Sequence[Path], scenario: str) -> dict[Key, Tail]:
    """Per (variant, queue, driver): its tail at the highest user count of *scenario* in the
    longest-window overload folder that ran it (empty when no folder qualifies)."""
    runs = []
    for folder in folders:
        if RunFolder(folder).has(RUN):
            run = Run.read(folder)
            if run.file.cells and _is_overload(run.file):
                runs.append((float(run.file.settings.duration), folder, run))
    out: dict[Key, Tail] = {}
    for duration, folder, run in sorted(runs, key=lambda r: -r[0]):
        doc = run.file
        cells = [c for c in doc.cells if c.scenario == scenario]
        if not cells:
            continue
        top = max(c.users for c in cells)
        for series, info in doc.variants.items():
            group = [c for c in cells if (c.variant, c.users) == (series, top)]
            valid = [c for c in group if c.ok]
            k = key(info, series)
            if k in out or not valid or not all("max" in c.latency_us for c in valid):
                continue
            if not all(tail_visible(c) for c in valid):  # TAIL_RULE: the window cannot show it
                continue
            jain = [c.jain for c in valid if c.fairness is not None]
            out[k] = Tail(
                fairness=statistics.median(jain) if jain else None,
                p999_us=percentile(group, "p99.9")[0],
                max_us=percentile(group, "max")[0],
                censored=frozenset(censored_percentiles(group)),
                users=top,
                pool=info.pool_size,
                window_s=duration,
                folder=folder.name,
                timeouts=timeouts(valid),
            )
    return out
