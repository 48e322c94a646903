"""What scenarios share: the target server, outcomes, HTTP load and the database's view.

Everything a scenario learns comes from outside the server: HTTP responses, the lab's
``/lab/pool`` counters, ``pg_stat_activity`` (by the server's ``application_name``) and
the table itself. Database readings use a fresh connection each time, so they survive
a PostgreSQL restart.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import database
from bench.common.server import VariantServer
from variants.settings import DatabaseUrl

OK, DEGRADED, BROKEN = "ok", "degraded", "broken"
ERROR, SKIPPED = "error", "skipped"
OUTCOMES = (OK, DEGRADED, BROKEN, ERROR, SKIPPED)


class Skip(Exception):
    """The scenario cannot run against this target; the message says why."""


@dataclass
class Outcome:
    """A scenario's verdict on one variant, with the numbers behind it."""

    outcome: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] | None = None


def verdict(broken: list[str], degraded: list[str], ok: str) -> tuple[str, str]:
    """(outcome, summary): broken if any broken reason, else degraded if any, else *ok*.

    The summary lists every reason, the broken ones first.
    """
    if broken or degraded:
        return (BROKEN if broken else DEGRADED), "; ".join(broken + degraded)
    return OK, ok


def plural(count: int, noun: str) -> str:
    """``1 connection``, ``2 connections``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass
class Target:
    """One running variant server, as a scenario sees it."""

    server: VariantServer
    url: DatabaseUrl
    postgres: database.EmbeddedPostgres | None
    pool_size: int
    pool_timeout: float
    quick: bool
    soak_seconds: float
    pre_ping: bool = False
    """Whether the server's pool pre-pings (``SESSIONBENCH_POOL_PRE_PING``), for the verdicts."""

    @property
    def name(self) -> str:
        return self.server.variant.name

    def depth(self, quick: Any, full: Any) -> Any:
        """The quick or the full value of a scenario parameter."""
        return quick if self.quick else full

    def client(self, timeout: float = 10.0, connections: int = 100) -> httpx.AsyncClient:
        """A client opening a new connection per request: uvicorn closes a connection after
        an unhandled error, and a reused one would turn the next request into a ReadError."""
        return httpx.AsyncClient(
            base_url=self.server.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=0),
        )


def status_of(response_or_error: httpx.Response | BaseException) -> str:
    """``"200"`` for a response, the exception's class name for a failed request."""
    if isinstance(response_or_error, httpx.Response):
        return str(response_or_error.status_code)
    return type(response_or_error).__name__


def is_success(status: str) -> bool:
    return status.isdigit() and 200 <= int(status) < 300


async def call(request: Awaitable[httpx.Response]) -> tuple[str, httpx.Response | None]:
    """Await one request; (status, response) with the error's class name as status on failure."""
    try:
        response = await request
    except httpx.HTTPError as exc:
        return status_of(exc), None
    return status_of(response), response


# --- the lab's own view ----------------------------------------------------------------------


async def pool(target: Target) -> dict[str, Any]:
    """``/lab/pool`` of the target; Skip if it has no lab routes."""
    async with target.client(timeout=5) as client:
        response = await client.get("/lab/pool")
    if response.status_code == 404:
        raise Skip(f"{target.name} mounts no /lab routes")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


async def settle(target: Target, within: float) -> tuple[float | None, dict[str, Any]]:
    """Wait until no connection is checked out: (seconds it took or None, last pool reading)."""
    started = time.monotonic()
    while True:
        stats = await pool(target)
        if stats["checked_out"] == 0:
            return time.monotonic() - started, stats
        if time.monotonic() - started > within:
            return None, stats
        await asyncio.sleep(0.05)


async def responsive(target: Target, within: float = 3.0) -> str:
    """Status of ``GET /todos/1`` answered *within* seconds (``"200"`` when the server works)."""
    async with target.client(timeout=within) as client:
        status, _ = await call(client.get("/todos/1"))
    return status


# --- the database's view ---------------------------------------------------------------------


async def activity(target: Target) -> dict[str, Any]:
    """The target's connections by state, and the longest open transaction in seconds."""
    conn = await database.connect(target.url, app_name="sessionbench-pitfalls")
    try:
        rows = await conn.fetch(
            "SELECT coalesce(state, 'unknown') AS state, count(*) AS n,"
            " coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float AS xact"
            " FROM pg_stat_activity WHERE application_name = $1 GROUP BY 1",
            target.server.app_name,
        )
    finally:
        await conn.close()
    states = {row["state"]: row["n"] for row in rows}
    return {
        "states": states,
        "connections": sum(states.values()),
        "idle_in_transaction": sum(n for s, n in states.items() if "idle in transaction" in s),
        "longest_transaction_s": max((row["xact"] for row in rows), default=0.0),
    }


async def rows_titled(target: Target, prefix: str) -> list[str]:
    """Titles of the rows whose title starts with *prefix* (a scenario's marker)."""
    conn = await database.connect(target.url, app_name="sessionbench-pitfalls")
    try:
        rows = await conn.fetch(
            "SELECT title FROM todos WHERE starts_with(title, $1) ORDER BY id", prefix
        )
    finally:
        await conn.close()
    return [row["title"] for row in rows]


def marker(target: Target, scenario: str) -> str:
    """A title prefix no other scenario or run writes."""
    return f"pitfall-{scenario}-{target.name}-{random.getrandbits(32):08x}"


# --- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request of a load phase: start and end (s since the phase began) and its status."""

    start: float
    end: float
    status: str

    @property
    def ok(self) -> bool:
        return is_success(self.status)


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def read_random(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return client.get(f"/todos/{random.randint(1, database.SEED_ROWS)}")


async def hammer(
    client: httpx.AsyncClient,
    request: Request,
    *,
    concurrency: int,
    stop: asyncio.Event,
    t0: float,
    samples: list[Sample],
    pause: float = 0.0,
) -> None:
    """*concurrency* workers send *request* back to back until *stop*; results into *samples*."""

    async def worker() -> None:
        while not stop.is_set():
            start = time.monotonic() - t0
            status, _ = await call(request(client))
            samples.append(Sample(start, time.monotonic() - t0, status))
            if not samples[-1].ok:
                await asyncio.sleep(0.02)  # a failing server must not turn this into a spin
            elif pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@asynccontextmanager
async def loaded(
    client: httpx.AsyncClient,
    request: Request,
    *,
    concurrency: int,
    t0: float,
    samples: list[Sample],
) -> AsyncIterator[None]:
    """Keep *concurrency* workers sending *request* while the block runs; stop them after it."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        hammer(client, request, concurrency=concurrency, stop=stop, t0=t0, samples=samples)
    )
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 60)
        except BaseException:
            task.cancel()
            raise


def statuses(samples: list[Sample] | list[str]) -> dict[str, int]:
    """Count of each status seen, most frequent first."""
    found = [s.status if isinstance(s, Sample) else s for s in samples]
    return dict(Counter(found).most_common())


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of *values* (None if empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
