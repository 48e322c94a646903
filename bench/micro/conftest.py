"""Fixtures of the micro-benchmarks: database, one uvloop loop, and the batched ``measure``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvloop

from bench.common import cpu, database
from bench.common.integrity import Monitor

Op = Callable[[], Awaitable[Any]]

ROUNDS = 10
"""Rounds per benchmark (5 with --micro-quick). The rounds' spread here is the machine's
speed drifting over seconds (consecutive rounds correlate, lag 1 about 0.5), so more rounds
of one benchmark narrow its interval less than their count suggests; 10 rounds give the
median's order-statistic interval 97.9 % nominal coverage (30 gave 95.7 %) at a third of
the time (``sessionbench micro`` took 555 s at 30 rounds in the reference of 2026-12-02)."""
QUICK_ROUNDS = 5
UNTIMED_BATCH = 3
"""Calls per benchmark in the test suite (--benchmark-disable): each operation runs, a few
times, untimed; no warm-up batch."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--micro-quick", action="store_true", help="fewer rounds (sessionbench micro --quick)"
    )


@pytest.fixture(scope="session")
def micro_db(pytestconfig: pytest.Config) -> Iterator[database.DatabaseUrl]:
    """A seeded PostgreSQL; the variant modules (imported after this) read its DATABASE_URL."""
    server_cores, other_cores = cpu.split_cores()
    if not _timed(pytestconfig):
        # Untimed (the test suite): pinning would only hold this process, and every test it
        # runs after these, to one core until the session ends.
        server_cores = other_cores = set(os.sched_getaffinity(0))
    with database.database_url_or_embedded() as (url, embedded):
        if embedded is not None and embedded.pid and server_cores != other_cores:
            cpu.pin([embedded.pid], other_cores)
        # Seed, vacuum, analyse and checkpoint first: autovacuum must not wake mid-benchmark.
        monitor = Monitor(url)
        monitor.prepare()
        monitor.close()
        previous = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = url.url
        own = os.sched_getaffinity(0)
        cpu.pin([os.getpid()], server_cores)
        try:
            yield url
        finally:
            cpu.pin([os.getpid()], own)
            if previous is None:
                os.environ.pop("DATABASE_URL", None)
            else:
                os.environ["DATABASE_URL"] = previous


def _timed(config: pytest.Config) -> bool:
    """pytest-benchmark times the benchmarks (``sessionbench micro``'s --benchmark-enable)."""
    return bool(config.getoption("benchmark_enable") or not config.getoption("benchmark_disable"))


@pytest.fixture(scope="session")
def loop(micro_db: database.DatabaseUrl) -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every benchmark (engines and pools are bound to it)."""
    event_loop = uvloop.new_event_loop()
    yield event_loop
    from variants.engine import engine

    event_loop.run_until_complete(engine.dispose())
    event_loop.close()


class PerOpTimer:
    """perf_counter divided by the batch size: pytest-benchmark then reports per operation."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.__name__ = f"perf_counter/{batch}"

    def __call__(self) -> float:
        return time.perf_counter() / self.batch


@pytest.fixture
def measure(
    benchmark: Any, loop: asyncio.AbstractEventLoop, request: pytest.FixtureRequest
) -> Callable[..., None]:
    quick = request.config.getoption("--micro-quick")

    def run(op: Op, *, batch: int, rounds: int = ROUNDS, per_call: int = 1) -> None:
        """Time *op* in rounds of *batch* calls; untimed (--benchmark-disable): UNTIMED_BATCH calls.

        *per_call*: operations one call of *op* performs (a write cycle is three requests);
        the timer divides by ``batch * per_call`` so the result is per operation.
        """
        timed = _timed(request.config)
        if not timed:
            batch = min(batch, UNTIMED_BATCH)

        async def many() -> None:
            for _ in range(batch):
                await op()

        if timed:  # warm-up: connections, caches, compiled statements
            loop.run_until_complete(many())
        benchmark._timer = PerOpTimer(batch * per_call)  # pinned pytest-benchmark reads _timer
        benchmark.extra_info["ops_per_round"] = batch * per_call
        benchmark.pedantic(
            loop.run_until_complete, args=(), setup=lambda: ((many(),), {}),
            rounds=QUICK_ROUNDS if quick else rounds, iterations=1,
        )  # fmt: skip

    return run
