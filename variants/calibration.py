"""A known extra cost per request, for calibration series (``context_plus5``, ``context_plus10``).

A comparison design is only proven sensitive if it finds a difference that is known in
advance. ``Burden`` wraps an app and, before each HTTP request, validates and serialises a
Todo ``iterations`` times through the response schema (the kind of work a request does),
and adds the CPU time that took to ``SPENT_NS``: the server's own tally
(bench/common/tally.py) reads it at every window edge, so the known extra cost per request
is measured in the same windows as the comparison that must find it. ``sessionbench cost``
counts the calibration variants like any other, which gives the extra cost in instructions.
"""

import datetime
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from variants.schemas import TodoOut

_ROW = {
    "id": 1,
    "title": "a todo of ordinary length",
    "done": False,
    "created_at": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
}
SPENT_NS = [0]
"""CPU ns this process spent in :func:`burn` (a list: one mutable cell, read by the tally)."""


def burn(iterations: int) -> int:
    """Validate and serialise a Todo *iterations* times (deterministic work)."""
    total = 0
    for i in range(iterations):
        total += len(TodoOut.model_validate(_ROW | {"id": i}).model_dump_json())
    return total


class Burden:
    """Run :func:`burn` before each HTTP request, then the wrapped app unchanged."""

    def __init__(self, app: ASGIApp, iterations: int) -> None:
        self.app = app
        self.iterations = iterations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            start = time.thread_time_ns()
            burn(self.iterations)
            SPENT_NS[0] += time.thread_time_ns() - start
        await self.app(scope, receive, send)
