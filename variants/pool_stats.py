"""Per-checkout pool wait and hold times, and barging, measured inside the server (opt-in).

Off unless ``SESSIONBENCH_POOL_STATS`` names a directory (the runner sets it): then this
process writes ``<dir>/<pid>.pid`` to say it listens, ``SIGUSR1`` resets the counters
(the runner sends it at the measurement window's start) and ``SIGUSR2`` writes them to
``<dir>/<pid>.json`` (at the window's end). Signals, not an HTTP route, so every worker
of ``--workers N`` answers for itself and the app's routes stay the contract's.

Recorded per checkout (µs, HdrHistograms with the range of ``bench.common.histograms``):
*wait* from asking the pool for a connection to getting one, *hold* from getting it to
giving it back (the reset on return included), and whether the checkout *barged*: took
a free connection while another checkout of this process was waiting and had not been
given one yet (a hand-off queue gives a returned connection to its waiter at once).
The SQLAlchemy variants are timed in their pool's queue (``variants/pool.py``), ``raw``
around asyncpg's acquire/release (``acquire`` below). ``variants`` must not import
``bench``; ``tests/test_pool_stats.py`` checks the range matches.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

ENV = "SESSIONBENCH_POOL_STATS"
HIST_RANGE = (1, 3_600_000_000, 3)
"""Same as ``bench.histograms.HIST_RANGE`` (1 µs .. 1 h, 3 significant digits)."""


MAX_BUFFERED = 5_000_000


def _histogram(values: list[int]) -> HdrHistogram:
    histogram = HdrHistogram(*HIST_RANGE)
    for value in values:
        histogram.record_value(max(1, value))
    return histogram


class PoolStats:
    """Wait/hold histograms and barging counts of one process's pool since the last reset."""

    def __init__(self) -> None:
        self.reset()
        self._taken: dict[int, int] = {}  # id(connection) -> checkout time, ns
        self.waiting = 0  # checkouts currently inside the pool's get (served or not)

    def reset(self) -> None:
        self._waits: list[int] = []  # µs; folded into histograms when dumped (cheaper
        self._holds: list[int] = []  # per checkout than HdrHistogram.record_value)
        self.checkouts = 0
        self.barged = 0

    def checked_out(self, item: object, asked_ns: int, *, barged: bool) -> None:
        now = time.perf_counter_ns()
        self._waits.append((now - asked_ns) // 1000)
        self._taken[id(item)] = now
        self.checkouts += 1
        self.barged += barged

    def checked_in(self, item: object) -> None:
        taken = self._taken.pop(id(item), None)
        if taken is not None:
            self._holds.append((time.perf_counter_ns() - taken) // 1000)
            if len(self._holds) > MAX_BUFFERED:  # a server never reset: stay bounded
                self.reset()

    @property
    def wait(self) -> HdrHistogram:
        return _histogram(self._waits)

    @property
    def hold(self) -> HdrHistogram:
        return _histogram(self._holds)

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


class _TimedAcquire:
    """``async with`` around asyncpg's acquire/release that records into *stats*."""

    __slots__ = ("conn", "limit", "pool", "stats")

    def __init__(self, pool: Any, limit: float, stats: PoolStats) -> None:
        self.pool, self.limit, self.stats = pool, limit, stats

    async def __aenter__(self) -> Any:
        stats = self.stats
        asked = time.perf_counter_ns()
        barged = stats.waiting > 0 and self.pool._queue.qsize() > 0  # free while others wait
        stats.waiting += 1
        try:
            self.conn = await self.pool.acquire(timeout=self.limit)
        finally:
            stats.waiting -= 1
        stats.checked_out(self.conn, asked, barged=barged)
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.pool.release(self.conn)
        finally:
            self.stats.checked_in(self.conn)


def acquire(pool: Any, timeout: float) -> Any:
    """``pool.acquire(timeout=…)`` of an asyncpg pool, timed when stats are on."""
    if STATS is None:
        return pool.acquire(timeout=timeout)
    return _TimedAcquire(pool, timeout, STATS)
