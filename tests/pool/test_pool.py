"""Pool queues and pool stats: FIFO hand-off on real connections, barging counted, the
runner's pool fields, the starvation reproduction, and the ``--pool-queue`` flag."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util.concurrency import greenlet_spawn

from bench.common import histograms
from bench.pool import repro
from bench.report.document import build
from variants import pool_stats
from variants.pool import HybridQueue, pool_class, queue_class
from variants.settings import DatabaseUrl

CLI = [sys.executable, "-m", "bench.cli"]


async def _checkout_order(
    url: DatabaseUrl, queue: str, *, stats: pool_stats.PoolStats | None = None
) -> list[str]:  # fmt: skip
    """Who gets a pool-of-one's connection first when it comes back: the queued waiter
    or a newcomer that asks for one right as it is returned (before the waiter runs)."""
    engine = create_async_engine(
        url.sqlalchemy, pool_size=1, max_overflow=0, pool_timeout=10,
        poolclass=pool_class(queue, stats),
    )  # fmt: skip
    order: list[str] = []
    newcomers: list[asyncio.Task[None]] = []

    async def use(name: str) -> None:
        async with engine.connect() as conn:
            order.append(name)
            await conn.execute(text("SELECT 1"))

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def newcomer_arrives(dbapi_connection: object, record: object) -> None:
        # Runs just before the connection goes back into the queue: a task created now
        # runs before the waiter that the check-in wakes.
        if not newcomers:
            newcomers.append(asyncio.get_running_loop().create_task(use("newcomer")))

    try:
        holder = await engine.connect()
        await holder.execute(text("SELECT 1"))
        waiter = asyncio.create_task(use("waiter"))
        await asyncio.sleep(0.02)  # the waiter is queued
        await holder.close()
        await asyncio.wait_for(asyncio.gather(waiter, *newcomers), 10)
        if stats is not None:  # before dispose(), which drains the queue with get()
            order.append(json.dumps(stats.as_dict()))
    finally:
        await engine.dispose()
    return order


def test_fifo_never_lets_a_newcomer_overtake_a_queued_waiter(db: DatabaseUrl) -> None:
    assert asyncio.run(_checkout_order(db, "fifo")) == ["waiter", "newcomer"]
    # The same scene on SQLAlchemy's queue: the newcomer barges (so this test can fail).
    assert asyncio.run(_checkout_order(db, "sqlalchemy")) == ["newcomer", "waiter"]


def test_hybrid_lets_newcomers_barge_only_until_the_oldest_waiter_starves(
    db: DatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HybridQueue, "threshold", 60.0)  # the waiter (20 ms) is not starving
    assert asyncio.run(_checkout_order(db, "hybrid")) == ["newcomer", "waiter"]
    monkeypatch.setattr(HybridQueue, "threshold", 0.005)  # it is: hand-off in order
    assert asyncio.run(_checkout_order(db, "hybrid")) == ["waiter", "newcomer"]


def test_timed_queue_records_wait_hold_and_barging(db: DatabaseUrl) -> None:
    def measured(queue: str) -> dict[str, Any]:
        *order, stats = asyncio.run(_checkout_order(db, queue, stats=pool_stats.PoolStats()))
        return dict(json.loads(stats), order=order)

    stock = measured("sqlalchemy")
    # the newcomer (barged past the waiter) and the waiter; the holder's connection was
    # created by the pool while it had room, not taken from the queue
    assert stock["order"] == ["newcomer", "waiter"]
    assert (stock["checkouts"], stock["barged"]) == (2, 1)
    wait, hold = (HdrHistogram.decode(stock[k]) for k in ("wait", "hold"))
    assert wait.get_total_count() == hold.get_total_count() == 2
    assert wait.get_max_value() >= 20_000  # the waiter queued ≥ 20 ms
    fifo = measured("fifo")
    assert fifo["order"] == ["waiter", "newcomer"]
    assert (fifo["checkouts"], fifo["barged"]) == (2, 0)


async def _second_return_scene(queue: str) -> tuple[list[str], int]:
    """A waits for a pool of two; both connections come back and a newcomer asks, all
    before A's task runs again: who got which, and the barged count."""
    stats = pool_stats.PoolStats()
    pool = queue_class(queue, stats)(2)
    got: list[str] = []

    async def waiter() -> None:
        got.append("A:" + await greenlet_spawn(pool.get, True, 5.0))

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)  # A is in line

    def one_loop_iteration() -> None:
        pool.put("x")  # the hand-off queues give x to A at once
        pool.put("y")  # then nobody is in line for y
        got.append("C:" + pool.get(True, 5.0))

    await greenlet_spawn(one_loop_iteration)
    await task
    return got, stats.barged


@pytest.mark.parametrize("queue", ["fifo", "hybrid"])
def test_a_hand_off_waiter_is_served_before_its_task_runs(
    queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flaky `barged == 1` of the FIFO series: A, handed x, was still inside get() and
    # counted as waiting, so the newcomer taking y (nobody's) was counted as barging.
    monkeypatch.setattr(HybridQueue, "threshold", 0.0)  # hybrid hands off too
    assert asyncio.run(_second_return_scene(queue)) == (["C:y", "A:x"], 0)


def test_a_newcomer_ahead_of_a_woken_waiter_barges(monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLAlchemy's queue only wakes A; the newcomer takes x ahead of it (so the test above
    # can fail), and A takes y when its task runs.
    assert asyncio.run(_second_return_scene("sqlalchemy")) == (["C:x", "A:y"], 1)
    # hybrid, before its oldest waiter starves: the same
    monkeypatch.setattr(HybridQueue, "threshold", 60.0)
    assert asyncio.run(_second_return_scene("hybrid")) == (["C:x", "A:y"], 1)


def test_stats_use_the_runner_histogram_range() -> None:
    assert pool_stats.HIST_RANGE == histograms.HIST_RANGE


def test_signals_reset_and_dump_in_the_server_process(tmp_path: Path) -> None:
    code = (
        "import os, signal, time; from variants import pool_stats as p; s = p.STATS;"
        "s.checked_out('c', time.perf_counter_ns(), barged=True); s.checked_in('c');"
        "os.kill(os.getpid(), signal.SIGUSR2); time.sleep(0.1);"
        "d = p.Path(os.environ[p.ENV]); os.rename(d / f'{os.getpid()}.json', d / 'before.json');"
        "os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.1);"
        "os.kill(os.getpid(), signal.SIGUSR2); time.sleep(0.1)"
    )  # fmt: skip
    env = {**os.environ, pool_stats.ENV: str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=30, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    (pid_file,) = tmp_path.glob("*.pid")
    before = json.loads((tmp_path / "before.json").read_text())
    after = json.loads((tmp_path / f"{pid_file.stem}.json").read_text())
    assert (before["checkouts"], before["barged"]) == (1, 1)
    assert HdrHistogram.decode(before["hold"]).get_total_count() == 1
    assert (after["checkouts"], after["barged"]) == (0, 0)  # SIGUSR1 reset it


def test_repro_starves_with_release_after_response_and_fifo_fixes_it() -> None:
    def run(release: str, queue: str) -> repro.Outcome:
        return asyncio.run(repro.simulate(release, queue, clients=64, pool=5, seconds=1.5))

    before, after, fifo = (
        run("before", "sqlalchemy"),
        run("after", "sqlalchemy"),
        run("after", "fifo"),
    )
    assert after.jain < 0.8 and before.jain > after.jain + 0.15, (before.line(), after.line())
    assert after.max_overtaken > 10 * max(1, fifo.max_overtaken)
    assert fifo.max_overtaken == 0 and fifo.barged == 0 and fifo.jain > 0.95, fifo.line()


def test_bad_pool_queue_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--pool-queue", "fifo,lifo", "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "'lifo'" in result.stderr
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_runner_writes_pool_fields_and_the_queue_axis(tmp_path: Path, db: DatabaseUrl) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--variants", "scoped,raw", "--scenarios", "read", "--users", "16",
         "--trials", "1", "--duration", "1.5", "--warmup", "0.5", "--pool-size", "2",
         "--pool-queue", "sqlalchemy,fifo", "--pool-stats", "--out", str(out)],
        capture_output=True, text=True, timeout=170,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["settings"]["pool_queues"] == ["sqlalchemy", "fifo"]
    assert doc["settings"]["pool_stats"] is True
    assert doc["variants"]["scoped+fifo"]["pool_queue"] == "fifo"
    assert len(doc["cells"]) == 4
    for cell in doc["cells"]:
        wait, hold = cell["pool_wait_us"], cell["pool_hold_us"]
        assert wait["count"] > cell["requests"] / 2 > 0, cell["variant"]  # one per request
        assert hold["count"] > 0 and 0 < hold["p50"] <= hold["max"]
        assert HdrHistogram.decode(wait["histogram"]).get_total_count() == wait["count"]
        barging = cell["pool_barging"]
        assert 0 <= barging["barged"] <= barging["checkouts"] == wait["count"]
        if cell["variant"] == "scoped+fifo":
            assert barging["barged"] == 0
    written = {p.name for p in build(out)}  # the report's pool section and axis figure
    assert {"pool-read-scoped.png", "pool-read-raw.png", "axis-pool_queue.png"} <= written
    section = (out / "report.md").read_text().split("## Pool wait and hold", 1)[1]
    section = section.split("\n## ", 1)[0]
    for cell in doc["cells"]:  # one row per series: its queue and its own checkouts
        info = doc["variants"][cell["variant"]]
        queue = info.get("pool_queue", "sqlalchemy")
        queue = "asyncpg's own" if info["variant"] == "raw" else queue
        row = (
            rf"^\| {re.escape(cell['variant'])}( \(invalid\))? \| {re.escape(queue)} \| 1 \| "
            rf"{cell['pool_barging']['checkouts']:,} \| "
        )
        assert re.search(row, section, re.MULTILINE), section
