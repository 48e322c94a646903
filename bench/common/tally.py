"""A server's own count of the requests it completed and the CPU it spent, read on a signal.

The co-scheduled pass (bench/load/coschedule.py) compares servers by cost per request in
the same windows. Counting requests at the load generator and CPU time from the runner
puts two clocks on a busy core between the numerator and the denominator; here one
process reads both at one instant. ``serve`` wraps the app in :class:`Tally` when
``SESSIONBENCH_TALLY`` names a file; each ``SIGUSR1`` appends one line to it:
``<epoch s> <requests completed> <process CPU ns> <calibration ns> <user ns> <system ns>
<context switches> <GC ns> <full-GC ns>`` (calibration: CPU spent on a calibration
series' known extra work, variants/calibration.py, 0 elsewhere; user and system: the
kernel's split of the process CPU, at clock-tick resolution; context switches: voluntary
plus involuntary, from /proc/self/status; GC: CPU spent in the cyclic garbage collector,
all generations and the oldest alone, timed by ``gc.callbacks``). The runner signals every
server of a group back to back at each window edge and takes the differences.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from starlette.types import ASGIApp, Receive, Scope, Send

TALLY_ENV = "SESSIONBENCH_TALLY"


class Row(NamedTuple):
    """One dump: the server's counters at one instant."""

    at: float  # epoch s
    requests: int  # completed so far
    cpu_ns: int  # process CPU
    calibration_ns: int
    user_ns: int = 0
    system_ns: int = 0
    switches: int = 0
    gc_ns: int = 0
    full_gc_ns: int = 0


class _GcClock:
    """CPU time this process spends in the garbage collector (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.spent = [0, 0, 0]  # per generation
        self._start = 0
        gc.callbacks.append(self._event)

    def _event(self, phase: str, info: dict[str, int]) -> None:
        now = time.thread_time_ns()
        if phase == "start":
            self._start = now
        else:
            self.spent[info["generation"]] += now - self._start


def _switches() -> int:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    return sum(int(line.split()[1]) for line in text.splitlines() if "ctxt_switches:" in line)


class Tally:
    """Count completed HTTP requests; dump (time, count, CPU ns) to *path* on SIGUSR1."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.path = path
        self.completed = 0
        self.gc = _GcClock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        signal.signal(signal.SIGUSR1, self._dump)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.completed += 1

    def _dump(self, signum: int, frame: Any) -> None:
        spent = time.clock_gettime_ns(time.CLOCK_PROCESS_CPUTIME_ID)
        calibration = sys.modules.get("variants.calibration")
        extra = calibration.SPENT_NS[0] if calibration is not None else 0
        times = os.times()
        line = (
            f"{time.time():.6f} {self.completed} {spent} {extra} {int(times.user * 1e9)} "
            f"{int(times.system * 1e9)} {_switches()} {sum(self.gc.spent)} {self.gc.spent[2]}\n"
        )
        with self.path.open("a") as out:
            out.write(line)


def read(path: Path) -> list[Row]:
    """The dumps in *path* (a line of an older format gives zeros for what it lacks)."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) in (4, 7, 9):
            rows.append(Row(float(parts[0]), *(int(x) for x in parts[1:])))
    return rows


def wrap(app: Any) -> Any:
    """*app* in a :class:`Tally` when ``SESSIONBENCH_TALLY`` is set, else *app* itself."""
    target = os.environ.get(TALLY_ENV)
    return Tally(app, Path(target)) if target else app
