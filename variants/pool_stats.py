"""Per-checkout pool wait and hold times, and barging, measured inside the server (opt-in).

Off unless ``SESSIONBENCH_POOL_STATS`` names a directory (the runner sets it): then this
process writes ``<dir>/<pid>.pid`` to say it listens, ``SIGUSR1`` resets the counters
(the runner sends it at the measurement window's start) and ``SIGUSR2`` writes them to
``<dir>/<pid>.json`` (at the window's end). Signals, not an HTTP route, so every worker
of ``--workers N`` answers for itself and the app's routes stay the contract's.

Recorded per checkout (µs, HdrHistograms with the range of ``bench.histograms``):
*wait* from asking the pool for a connection to getting one, *hold* from getting it to
giving it back (the reset on return included), and whether the checkout *barged*: took
a free connection while other checkouts of this process were already waiting for one.
The SQLAlchemy variants are timed in their pool's queue (``variants/pool.py``), ``raw``
around asyncpg's acquire/release (``acquire`` below). ``variants`` must not import
``bench``; ``tests/test_pool_stats.py`` checks the range matches.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

ENV = "SESSIONBENCH_POOL_STATS"
HIST_RANGE = (1, 3_600_000_000, 3)
"""Same as ``bench.histograms.HIST_RANGE`` (1 µs .. 1 h, 3 significant digits)."""


class PoolStats:
    """Wait/hold histograms and barging counts of one process's pool since the last reset."""

    def __init__(self) -> None:
        self.reset()
        self._taken: dict[int, int] = {}  # id(connection) -> checkout time, ns
        self.waiting = 0  # checkouts currently inside the pool's get

    def reset(self) -> None:
        self.wait = HdrHistogram(*HIST_RANGE)
        self.hold = HdrHistogram(*HIST_RANGE)
        self.checkouts = 0
        self.barged = 0

    def checked_out(self, item: object, asked_ns: int, *, barged: bool) -> None:
        now = time.perf_counter_ns()
        self.wait.record_value(max(1, (now - asked_ns) // 1000))
        self._taken[id(item)] = now
        self.checkouts += 1
        self.barged += barged

    def checked_in(self, item: object) -> None:
        taken = self._taken.pop(id(item), None)
        if taken is not None:
            self.hold.record_value(max(1, (time.perf_counter_ns() - taken) // 1000))

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "wait": self.wait.encode().decode(),
            "hold": self.hold.encode().decode(),
            "checkouts": self.checkouts,
            "barged": self.barged,
        }

    def dump(self, directory: Path) -> None:
        path = directory / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_dict()))
        tmp.replace(path)  # the runner never reads half a file


def install() -> PoolStats | None:
    """The process's stats and signal handlers when ``SESSIONBENCH_POOL_STATS`` is set."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    directory = Path(raw)
    directory.mkdir(parents=True, exist_ok=True)
    stats = PoolStats()
    signal.signal(signal.SIGUSR1, lambda signum, frame: stats.reset())
    signal.signal(signal.SIGUSR2, lambda signum, frame: stats.dump(directory))
    (directory / f"{os.getpid()}.pid").write_text("")
    return stats


STATS = install()


@asynccontextmanager
async def _timed_acquire(pool: Any, limit: float, stats: PoolStats) -> AsyncIterator[Any]:
    asked = time.perf_counter_ns()
    barged = stats.waiting > 0 and pool._queue.qsize() > 0  # a free one while others wait
    stats.waiting += 1
    try:
        conn = await pool.acquire(timeout=limit)
    finally:
        stats.waiting -= 1
    stats.checked_out(conn, asked, barged=barged)
    try:
        yield conn
    finally:
        try:
            await pool.release(conn)
        finally:
            stats.checked_in(conn)


def acquire(pool: Any, timeout: float) -> Any:
    """``pool.acquire(timeout=…)`` of an asyncpg pool, timed when stats are on."""
    if STATS is None:
        return pool.acquire(timeout=timeout)
    return _timed_acquire(pool, timeout, STATS)
