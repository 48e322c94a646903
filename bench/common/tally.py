"""A server's own count of the requests it completed and the CPU it spent, read on a signal.

The co-scheduled pass (bench/load/coschedule.py) compares servers by cost per request in
the same windows. Counting requests at the load generator and CPU time from the runner
puts two clocks on a busy core between the numerator and the denominator; here one
process reads both at one instant. ``serve`` wraps the app in :class:`Tally` when
``SESSIONBENCH_TALLY`` names a file; each ``SIGUSR1`` appends one line to it:
``<epoch s> <requests completed> <process CPU ns> <calibration ns>`` (the last: CPU spent
on a calibration series' known extra work, variants/calibration.py; 0 elsewhere). The
runner signals every server of a group back to back at each window edge and takes the
differences.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

TALLY_ENV = "SESSIONBENCH_TALLY"


class Tally:
    """Count completed HTTP requests; dump (time, count, CPU ns) to *path* on SIGUSR1."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.path = path
        self.completed = 0
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
        line = f"{time.time():.6f} {self.completed} {spent} {extra}\n"
        with self.path.open("a") as out:
            out.write(line)


def read(path: Path) -> list[tuple[float, int, int, int]]:
    """The dumps in *path*: (epoch s, requests completed, process CPU ns, calibration ns)."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])))
    return rows


def wrap(app: Any) -> Any:
    """*app* in a :class:`Tally` when ``SESSIONBENCH_TALLY`` is set, else *app* itself."""
    target = os.environ.get(TALLY_ENV)
    return Tally(app, Path(target)) if target else app
