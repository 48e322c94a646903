"""Minimal reproduction of pool starvation under overload, without FastAPI or a database.

``python -m bench.pool.repro [--clients 64] [--pool 5] [--seconds 2]``

A pool of N items behind SQLAlchemy's own ``AsyncAdaptedQueue`` (or the FIFO hand-off
queue of ``variants/pool.py``), M > N closed-loop clients. Each request is a task of its
own, as in an ASGI server: check out, "query" (a sleep: the database works on another
core), some CPU work on the loop (serialising; it makes loop iterations long, as on a
busy server), respond, and the client sends its next request after a short turnaround.
Only the moment of the check-in differs:

- ``before``: check-in, then respond (the release inside the handler);
- ``after``: respond, then a "ROLLBACK" round trip, then check-in, all in the request's
  own task (``scoped``, ``scoped_task``: ``remove()`` in the middleware after the response);
- ``after-task``: the same, but the close runs in a task of its own, as
  ``AsyncSession.__aexit__`` does (``depends``: ``async with Session()`` in a yield
  dependency whose exit runs after the response).

With ``after``, the check-in and the same client's next request become ready in the
same loop iteration, the check-in first: the returned connection is put back, the oldest
waiter is only *woken*, and the newcomer's ``get_nowait()`` takes the connection before
the woken waiter runs; that waiter finds the queue empty and joins the end of the line
again. A client that got in once keeps getting in; the others wait until one of those
cycles breaks. It prints per case: Jain's index of requests per client, the most times
one checkout was overtaken, barged checkouts, p99/max of the wait.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.util import queue as sqla_queue
from sqlalchemy.util.concurrency import greenlet_spawn

from variants.pool import HandOffQueue


@dataclass(frozen=True)
class Timing:
    query: float = 0.0005  # s the database works (sleep: another core)
    cpu: float = 0.0002  # s of CPU on the loop per request (busy)
    rollback: float = 0.0001  # s of the reset round trip before the check-in
    turnaround: float = 0.0002  # s from response to the client's next request


@dataclass
class Outcome:
    release: str
    queue: str
    requests: list[int]  # per client
    waits: list[float]  # s, per checkout
    max_overtaken: int  # most later arrivals that got a connection ahead of one checkout
    barged: int  # checkouts that took a free connection while others waited
    checkouts: int

    @property
    def jain(self) -> float:
        total = sum(self.requests)
        squares = sum(n * n for n in self.requests)
        return total * total / (len(self.requests) * squares) if squares else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0

    def line(self) -> str:
        return (
            f"release {self.release:10} queue {self.queue:10} requests {sum(self.requests):6}  "
            f"jain {self.jain:.2f}  min/max per client {min(self.requests)}/{max(self.requests)}  "
            f"max overtaken {self.max_overtaken:5}  barged {self.barged}/{self.checkouts}  "
            f"wait p99 {self.percentile(99) * 1e3:7.1f} ms max {max(self.waits) * 1e3:7.1f} ms"
        )


QUEUES: dict[str, Callable[[int], Any]] = {
    "sqlalchemy": lambda n: sqla_queue.AsyncAdaptedQueue(n),
    "fifo": lambda n: HandOffQueue(n),
}


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def simulate(
    release: str,
    queue_name: str,
    *,
    clients: int = 64,
    pool: int = 5,
    seconds: float = 2.0,
    timing: Timing = Timing(),
) -> Outcome:
    """Run the closed loop for *seconds*; *release*: ``before``, ``after``, ``after-task``."""
    queue = QUEUES[queue_name](pool)
    for item in range(pool):
        queue.put_nowait(item)
    requests = [0] * clients
    waits: list[float] = []
    ticket = 0  # arrival order of checkouts
    waiting: dict[int, int] = {}  # ticket -> times overtaken so far
    max_overtaken = 0
    barged = 0
    stop = time.perf_counter() + seconds

    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    done = loop.create_future()
    active = clients

    def arrive(client: int) -> None:
        """The client's request reaches the server: a task of its own, as in uvicorn."""
        task = loop.create_task(handle(client))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def respond(client: int) -> None:
        """The response leaves; the client sends its next request after its turnaround."""
        nonlocal active
        requests[client] += 1
        if time.perf_counter() < stop:
            loop.call_later(timing.turnaround, arrive, client)
        else:
            active -= 1
            if not active:
                done.set_result(None)

    async def handle(client: int) -> None:
        nonlocal ticket, max_overtaken, barged
        ticket += 1
        mine = ticket
        # A free connection taken while an earlier checkout has none yet. The hand-off
        # queue gives a returned connection to its waiter at once: one handed its connection
        # is served, though it stays in ``waiting`` until its task runs.
        hand_off = isinstance(queue, HandOffQueue)
        barging = queue.qsize() > 0 and (queue.unserved() if hand_off else bool(waiting))
        barged += barging
        waiting[mine] = 0
        asked = time.perf_counter()
        item = await greenlet_spawn(queue.get, True, 30.0)
        waits.append(time.perf_counter() - asked)
        del waiting[mine]
        if barging or not hand_off:  # else served in order: the earlier ones were handed theirs
            for other in waiting:
                if other < mine:  # an earlier checkout still waits: it was overtaken
                    waiting[other] += 1
                    max_overtaken = max(max_overtaken, waiting[other])
        await asyncio.sleep(timing.query)
        _spin(timing.cpu)
        if release == "before":
            queue.put_nowait(item)
            respond(client)
        elif release == "after":
            respond(client)
            await asyncio.sleep(timing.rollback)
            queue.put_nowait(item)
        else:  # "after-task": the check-in runs in a task of its own (AsyncSession.__aexit__)
            respond(client)

            async def close() -> None:
                await asyncio.sleep(timing.rollback)
                queue.put_nowait(item)

            await asyncio.create_task(close())

    for index in range(clients):
        arrive(index)
    await done
    await asyncio.gather(*tasks)
    return Outcome(release, queue_name, requests, waits, max_overtaken, barged, len(waits))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pool.repro", description=__doc__)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--pool", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    cases = [("before", "sqlalchemy"), ("after-task", "sqlalchemy"), ("after", "sqlalchemy"),
             ("after", "fifo")]  # fmt: skip
    for release, queue_name in cases:
        outcome = asyncio.run(
            simulate(release, queue_name, clients=args.clients, pool=args.pool,
                     seconds=args.seconds)
        )  # fmt: skip
        print(outcome.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
