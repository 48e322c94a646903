"""The runner's side of ``variants/pool_stats.py``: reset at the window's start, collect at its end.

A server started with ``SESSIONBENCH_POOL_STATS=<dir>`` registers every process that
records (``<dir>/<pid>.pid``). Only those of the server's current process tree are
signalled (a supervisor without handlers would die of ``SIGUSR1``); their dumps are
merged into the cell's ``pool_wait_us``, ``pool_hold_us`` and ``pool_barging``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.common import cpu, histograms

ENV = "SESSIONBENCH_POOL_STATS"  # = variants.pool_stats.ENV


def recording_pids(directory: Path, root_pid: int | None) -> list[int]:
    """The processes of *root_pid*'s tree that registered as pool-stats recorders."""
    if root_pid is None or not directory.is_dir():
        return []
    registered = {int(p.stem) for p in directory.glob("*.pid") if p.stem.isdigit()}
    return [pid for pid in cpu.tree_pids(root_pid) if pid in registered]


def reset(directory: Path, root_pid: int | None) -> list[int]:
    """Zero every recorder's counters (the window starts); the pids signalled."""
    pids = recording_pids(directory, root_pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            (directory / f"{pid}.json").unlink(missing_ok=True)
            os.kill(pid, signal.SIGUSR1)
    return pids


def collect(directory: Path, pids: list[int], timeout: float = 5.0) -> dict[str, Any]:
    """Ask *pids* to dump and merge their stats into the cell's fields ({} if none answered)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR2)
    dumps = []
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in sorted(pending):
            path = directory / f"{pid}.json"
            if path.exists():
                dumps.append(json.loads(path.read_text()))
                pending.discard(pid)
        if pending:
            time.sleep(0.01)
    return merge(dumps) if dumps else {}


def merge(dumps: list[dict[str, Any]]) -> dict[str, Any]:
    """The cell fields (contract.md) from the dumps of one server's processes."""
    return {
        "pool_wait_us": summary(histograms.merge(d["wait"] for d in dumps)),
        "pool_hold_us": summary(histograms.merge(d["hold"] for d in dumps)),
        "pool_barging": {
            "checkouts": sum(d["checkouts"] for d in dumps),
            "barged": sum(d["barged"] for d in dumps),
        },
    }


def summary(histogram: HdrHistogram) -> dict[str, Any]:
    """count, mean, percentiles and max in µs, and the encoded histogram."""
    return {
        "count": histogram.get_total_count(),
        **histograms.summary(histogram),
        "histogram": histograms.encode(histogram),
    }
