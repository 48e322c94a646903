"""Stalls as results: a series whose server stopped answering while it held connections.

The load runner marks such a cell ``status: "stall"`` with ``stall`` = what held what
(requests in flight, connections and their state, how long, requests in the window).
Runs recorded before that kept them as invalid cells with ``lingering_transactions``;
the runner's own rule (``stall_record``) reads those too. Per series this module gives
the lowest user count that stalled and the evidence, with the mechanism where it is known
(a sync ``Session`` in FastAPI's threadpool, a variant with ``threadpool_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.common.result_files import LoadCell, RunFile, SeriesInfo
from bench.load.runner import stall_record

ISSUES = "fastapi#888, open fix fastapi#12066 (alt. #15388), related #3205"
MECHANISM = (
    "Why the threadpool deadlocks: FastAPI runs a `def` endpoint in its threadpool and, "
    "since fastapi#888, validates the endpoint's response in the threadpool too, while the "
    "request's session still holds its connection. With more requests than threads and "
    "more threads than connections, every thread can be blocked in the pool's checkout "
    "while the requests that hold the connections wait for a thread to finish: nothing "
    f"moves until `pool_timeout`. Upstream: {ISSUES}."
)


@dataclass
class Stall:
    """The stalls of one series: the lowest user count and the evidence of its cells."""

    series: str
    users: int
    cells: list[dict[str, Any]] = field(default_factory=list)  # the stall records at `users`
    trials: int = 0  # cells run at `users` (every scenario)
    scenarios: list[str] = field(default_factory=list)
    threads: int | None = None
    pool: int | None = None

    @property
    def in_flight(self) -> int:
        return max(int(c.get("in_flight") or 0) for c in self.cells)

    @property
    def connections(self) -> int:
        return max(int(c.get("connections") or 0) for c in self.cells)

    @property
    def held_s(self) -> float:
        return max(float(c.get("held_s") or 0) for c in self.cells)

    @property
    def served(self) -> int:
        """The most requests any stalled window completed."""
        return max(int(c.get("requests_in_window") or 0) for c in self.cells)

    @property
    def states(self) -> str:
        merged: dict[str, int] = {}
        for c in self.cells:
            for state, n in (c.get("states") or {}).items():
                merged[state] = max(merged.get(state, 0), n)
        return ", ".join(f"{n} {state}" for state, n in merged.items()) or "none"

    def headline(self) -> str:
        """``deadlocks at N users`` (a threadpool variant) or ``stalls at N users``."""
        return f"{'deadlocks' if self.threads else 'stalls'} at {self.users} users"

    def mechanism(self) -> str:
        """The mechanism in a few words, for the scorecard."""
        if self.threads and self.pool:
            return f"{self.threads} threads wait for {self.pool} connections: fastapi#12066"
        return f"{self.connections} connections held, no answer"

    def evidence(self) -> str:
        """What held what, from the cells' records."""
        threads = f" on {self.threads} threads" if self.threads else ""
        quiet = min(float(c.get("quiet_s") or 0) for c in self.cells)
        window = self.cells[0].get("window_s")
        window_text = f" {window:g} s" if isinstance(window, int | float) else ""
        return (
            f"{len(self.cells)} of {self.trials} cells at {self.users} users stalled "
            f"({', '.join(self.scenarios)}): {self.in_flight} requests in flight{threads}"
            f"{f', pool {self.pool}' if self.pool else ''}; connections held: {self.states}, "
            f"the oldest for {self.held_s:.1f} s; at most {self.served} requests completed "
            f"in a{window_text} window, none in its last {quiet:.1f} s"
        )


def record(cell: LoadCell, duration: float) -> dict[str, Any] | None:
    """*cell*'s stall record: its own, or the runner's rule over an older run's cell."""
    if cell.status == "stall":
        return dict(cell.stall or {"users": cell.users})
    lingering = cell.lingering_transactions
    if cell.status == "invalid" and lingering:
        # the runner's rule reads the cell as it writes it
        return stall_record(cell.model_dump(exclude_unset=True), lingering, duration)
    return None


def is_stall(cell: LoadCell, doc: RunFile) -> bool:
    return record(cell, float(doc.settings.duration)) is not None


def stalls(doc: RunFile) -> dict[str, Stall]:
    """Series → its stalls at the lowest user count where any cell stalled."""
    duration = float(doc.settings.duration)
    found: dict[str, dict[int, list[tuple[LoadCell, dict[str, Any]]]]] = {}
    for cell in doc.cells:
        rec = record(cell, duration)
        if rec is not None:
            found.setdefault(cell.variant, {}).setdefault(cell.users, []).append((cell, rec))
    out = {}
    for series, by_users in found.items():
        users = min(by_users)
        info = doc.variants.get(series, SeriesInfo())
        run_at = [c for c in doc.cells if (c.variant, c.users) == (series, users)]
        pairs = by_users[users]
        out[series] = Stall(
            series,
            users,
            cells=[rec for _, rec in pairs],
            trials=len(run_at),
            scenarios=list(dict.fromkeys(c.scenario for c, _ in pairs)),
            threads=info.threadpool_tokens,
            pool=info.pool_size,
        )
    return out
