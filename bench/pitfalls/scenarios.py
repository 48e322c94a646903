"""The pitfall scenarios: one async function each, docstring first line = its label.

A scenario probes one running variant (``Target``) from outside and returns an
``Outcome``: ``ok`` (did what a user expects), ``degraded`` (correct answers, but a
resource held or errors a careful app would avoid) or ``broken`` (wrong answers, lost
or phantom writes, leaked connections, a server that stops serving), always with the
numbers that decided it. Scenarios that need the lab routes raise ``Skip`` on a
variant without them. Parameters scale with ``--quick`` / ``--full`` (``Target.depth``).

Each registers itself with ``@scenario(...)`` beside its code: its brief (the matrix's key
numbers), what its breaking means for the advice, and how the matrix runs it. ``REGISTRY``
keeps them in definition order, which is the run order (the PostgreSQL restart last: it
disturbs every server). Adding one: the function and its decorator here, the lab endpoints it
calls in ``variants/lab`` (``docs/extending.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from bench.pitfalls.probe import (
    Outcome,
    Sample,
    Skip,
    Target,
    activity,
    call,
    is_success,
    loaded,
    marker,
    percentile,
    plural,
    pool,
    read_random,
    responsive,
    rows_titled,
    settle,
    statuses,
    verdict,
)

Scenario = Callable[[Target], Coroutine[Any, Any, Outcome]]
SharedScenario = Callable[[list[Target]], Coroutine[Any, Any, list[Outcome | Exception]]]
Brief = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Registered:
    """A scenario and what the matrix, the report and the advice need of it."""

    name: str
    probe: Scenario
    brief: Brief | None = None
    """A cell's key numbers in a few words, from its ``numbers`` (the matrix's cells)."""
    unconditional: str | None = None
    """Broken here, broken for every app: what breaks, in a few words (the advice)."""
    condition: str | None = None
    """Broken only for code written a certain way: when it is safe, in a few words."""
    fresh_server: bool = False
    """Starts from a freshly started server (an earlier restart left stale pools)."""
    shared: SharedScenario | None = None
    """Run for every variant and setting at once, each on a server started for it; the
    single-target function stays what a cell of its own would run."""
    pre_ping_sweep: bool = False
    """Run with the pool's pre-ping off and on: what a pool setting fixes for every strategy
    is then told apart from what a strategy does."""
    repeated: bool = False
    """Its cells run ``--repeats`` times (a leak seen in 1 run of 2 is intermittent)."""


REGISTRY: dict[str, Registered] = {}
"""Every scenario, in definition order = run order."""


def scenario(
    *,
    brief: Brief | None = None,
    unconditional: str | None = None,
    condition: str | None = None,
    fresh_server: bool = False,
    shared: SharedScenario | None = None,
    pre_ping_sweep: bool = False,
    repeated: bool = False,
) -> Callable[[Scenario], Scenario]:
    """Register the decorated scenario under its function's name (see ``Registered``)."""

    def register(probe: Scenario) -> Scenario:
        name = probe.__name__
        if name in REGISTRY:
            raise ValueError(f"pitfall scenario {name!r} is registered twice")
        REGISTRY[name] = Registered(
            name, probe, brief, unconditional, condition, fresh_server, shared,
            pre_ping_sweep, repeated,
        )  # fmt: skip
        return probe

    return register


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _codes(counts: dict[str, int]) -> str:
    return " ".join(f"{code}×{n}" for code, n in counts.items())


SETTLE = 3.0  # s an idle server gets to return every connection before we call it a leak
HOLD_LIMIT = 2.0
"""streaming: a hold longer than this many page delays spans pages (see ``streaming``)."""


def _leak_reasons(stats: dict[str, Any], act: dict[str, Any]) -> list[str]:
    reasons = []
    if stats["checked_out"]:
        reasons.append(
            f"{plural(stats['checked_out'], 'connection')} never returned to the pool "
            f"({act['idle_in_transaction']} idle in transaction)"
        )
    if stats.get("registry"):
        reasons.append(f"{plural(stats['registry'], 'session')} left in the scoped registry")
    return reasons


async def _aftermath(target: Target) -> tuple[dict[str, Any], list[str]]:
    """Numbers and broken-reasons once the scenario's traffic is over: leaks, a dead server."""
    _, stats = await settle(target, SETTLE)
    act = await activity(target)
    follow = await responsive(target, within=target.pool_timeout + 2)
    numbers = {
        "leaked_connections": stats["checked_out"],
        "idle_in_transaction_after": act["idle_in_transaction"],
        "registry_after": stats.get("registry"),
        "follow_up_get": follow,
    }
    broken = _leak_reasons(stats, act)
    if not is_success(follow):
        broken.append(f"a plain GET afterwards got {follow}")
    return numbers, broken


@scenario(
    brief=lambda n: f"{n['errors']}/{n['requests']} failed",
    condition="no fan-out on one session",
)
async def fanout(target: Target) -> Outcome:
    """Fan-out inside a request: asyncio.gather over queries, the strategy's natural way.

    The scoped family gathers on the global session, depends on its injected session,
    context opens one session per task (``/lab/fanout?n=2``). First one request at a
    time on a warm pool (a connection is idle, so the first query takes it without
    waiting), then a burst of pool-size requests at once, where queries must wait for or
    open a connection: a shared session fails exactly then.
    """
    await pool(target)
    requests = target.depth(5, 12)
    fan = {"n": 2}
    async with target.client(timeout=target.pool_timeout + 5) as client:
        await call(client.get("/todos/1"))  # warm: one idle connection in the pool
        one_by_one = []
        for _ in range(requests):
            # Some strategies give the connection back only after the response is sent.
            await settle(target, 0.5)
            one_by_one.append((await call(client.get("/lab/fanout", params=fan)))[0])
        burst = await asyncio.gather(
            *(call(client.get("/lab/fanout", params=fan)) for _ in range(target.pool_size))
        )
    at_once = [status for status, _ in burst]
    after, broken = await _aftermath(target)
    seen = one_by_one + at_once
    errors = sum(not is_success(s) for s in seen)
    numbers = {
        "requests": len(seen),
        "errors": errors,
        "one_by_one": statuses(one_by_one),
        "at_once": statuses(at_once),
        **after,
    }
    degraded = [f"{errors}/{len(seen)} requests failed"] if errors else []
    outcome, summary = verdict(
        broken, degraded, f"{len(seen)}/{len(seen)} answered 200, no connection leaked"
    )
    return Outcome(outcome, summary, numbers)


@scenario(
    brief=lambda n: (
        f"{n['written']}/{n['requests']} written · {n['held_while_task_waits']} conn held "
        f"while task waits"
    ),
    condition="no session in background tasks",
)
async def background(target: Target) -> Outcome:
    """Background task writing after the response (FastAPI BackgroundTasks).

    The handler reads its connection's backend pid and schedules a task that waits
    ``delay`` and then writes a row titled with its own backend pid (same pid: the task
    ran on the request's connection). While the task waits, the pool and
    pg_stat_activity show whether the request's connection is still held.
    """
    await pool(target)
    requests, delay = target.depth(2, 5), 0.6
    mark = marker(target, "background")
    seen, held, idle_tx, request_pids = [], [], [], {}
    async with target.client() as client:
        for i in range(requests):
            status, response = await call(
                client.post("/lab/background", params={"marker": f"{mark}-{i}", "delay": delay})
            )
            seen.append(status)
            if response is not None and is_success(status):
                request_pids[f"{mark}-{i}"] = response.json()
            await asyncio.sleep(delay / 2)
            held.append((await pool(target))["checked_out"])
            idle_tx.append((await activity(target))["idle_in_transaction"])
    deadline = time.monotonic() + delay + 3
    while time.monotonic() < deadline:
        written = await rows_titled(target, mark)
        if len(written) >= len(request_pids):
            break
        await asyncio.sleep(0.1)
    writers = dict(title.rsplit(":", 1) for title in written)
    same = sum(int(writers[m]) == pid for m, pid in request_pids.items() if m in writers)
    after, broken = await _aftermath(target)
    numbers = {
        "requests": requests,
        "statuses": statuses(seen),
        "written": len(written),
        "same_backend_as_request": same,
        "held_while_task_waits": max(held),
        "idle_in_transaction_while_task_waits": max(idle_tx),
        **after,
    }
    if len(request_pids) < requests:
        broken.append(f"{requests - len(request_pids)}/{requests} requests failed")
    if len(written) < len(request_pids):
        broken.append(f"{len(request_pids) - len(written)} background writes lost")
    degraded = []
    if max(held):
        degraded.append(
            f"the request's connection stays checked out while the task waits "
            f"({max(idle_tx)} idle in transaction); the task ran on the request's "
            f"connection {same}/{len(written)}"
        )
    outcome, summary = verdict(
        broken,
        degraded,
        f"{len(written)}/{requests} written, no connection held while the task waits",
    )
    return Outcome(outcome, summary, numbers)


@scenario(
    brief=lambda n: (
        f"held {n.get('longest_connection_hold_s', 0.0):.1f} s, open tx "
        f"{n['longest_open_transaction_s']:.1f} s of {n['stream_s']:.1f} s stream"
    ),
    condition="no session in streamed responses",
)
async def streaming(target: Target) -> Outcome:
    """Streaming response that reads the database page by page while it streams.

    Samples the pool and pg_stat_activity every 0.1 s during the stream: how long a
    connection is held, and how long a transaction stays open idle between pages.
    Verdict rule (``HOLD_LIMIT``): degraded when the longest continuous hold exceeds
    2 × the page delay (0.2 s, so 0.4 s). The hold is the longer of the longest open
    transaction (pg_stat_activity) and the longest run of consecutive samples with a
    connection checked out. A strategy that takes a connection per page holds it for one
    query: 0.0–0.1 s here, under one sampling interval. One that keeps it across pages
    holds it about (pages − 1) × delay, 0.8 s in a quick run (measured 0.8–1.1 s; the
    sampled run alone reads 0.7–0.9 s, as it can miss a sampling interval at each end).
    2 × delay sits in the middle of that gap, and the gap only widens in a full run.
    """
    await pool(target)
    pages, size, delay = target.depth(5, 10), 20, 0.2
    held: list[tuple[float, int]] = []
    longest = 0.0
    received = 0

    async def consume() -> str:
        nonlocal received
        async with target.client() as client:
            params = {"pages": pages, "size": size, "delay": delay}
            async with client.stream("GET", "/lab/stream", params=params) as response:
                async for text in response.aiter_lines():
                    received += bool(text.strip())
                return str(response.status_code)

    started = time.monotonic()
    task = asyncio.create_task(consume())
    while not task.done():
        await asyncio.sleep(0.1)
        held.append((time.monotonic(), (await pool(target))["checked_out"]))
        longest = max(longest, (await activity(target))["longest_transaction_s"])
    try:
        status = await task
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    seconds = time.monotonic() - started
    after, broken = await _aftermath(target)
    held_fraction = sum(1 for _, h in held if h) / len(held) if held else 0.0
    longest_held = _longest_run(held)
    limit = HOLD_LIMIT * delay
    numbers = {
        "status": status,
        "rows": received,
        "rows_expected": pages * size,
        "stream_s": seconds,
        "page_delay_s": delay,
        "connection_held_fraction": held_fraction,
        "longest_connection_hold_s": longest_held,
        "longest_open_transaction_s": longest,
        **after,
    }
    if not is_success(status) or received != pages * size:
        broken.append(f"stream {status} with {received}/{pages * size} rows")
    degraded = []
    if max(longest, longest_held) > limit:
        degraded.append(
            f"a connection held {longest_held:.1f} s (transaction open {longest:.1f} s) of "
            f"the {seconds:.1f} s stream, > {HOLD_LIMIT:g} × the {delay:g} s page delay "
            f"(held {held_fraction:.0%} of the time)"
        )
    outcome, summary = verdict(
        broken,
        degraded,
        f"longest hold {max(longest, longest_held):.2f} s ≤ {HOLD_LIMIT:g} × the {delay:g} s "
        "page delay: "
        "per page only",
    )
    return Outcome(outcome, summary, numbers)


def _longest_run(samples: list[tuple[float, int]]) -> float:
    """Longest stretch (s) between the first and last of consecutive samples with a hold."""
    longest, start = 0.0, None
    for at, count in samples:
        if count and start is None:
            start = at
        elif not count:
            start = None
        if start is not None:
            longest = max(longest, at - start)
    return longest


@scenario(
    brief=lambda n: f"pool back after {_seconds(n['connections_back_after_s'])}",
    unconditional="leaks when clients hang up",
)
async def disconnect(target: Target) -> Outcome:
    """Client disconnect mid-query: a burst of pg_sleep requests whose clients hang up.

    ``pool size`` raw HTTP connections each send ``GET /lab/sleep`` and close the
    socket 0.3 s later; then: are the connections returned to the pool, and when?
    """
    await pool(target)
    burst, seconds = target.pool_size, target.depth(1.0, 2.0)
    host, port = "127.0.0.1", target.server.port
    request = (
        f"GET /lab/sleep?seconds={seconds} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    )  # fmt: skip
    writers = []
    for _ in range(burst):
        _, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        await writer.drain()
        writers.append(writer)
    await asyncio.sleep(0.3)
    for writer in writers:
        writer.close()
    closed = time.monotonic()
    await asyncio.sleep(0.2)
    running = (await activity(target))["states"].get("active", 0)
    returned, _ = await settle(target, seconds + SETTLE)
    back_after = time.monotonic() - closed if returned is not None else None
    after, broken = await _aftermath(target)
    numbers = {
        "cancelled_requests": burst,
        "query_seconds": seconds,
        "queries_running_after_disconnect": running,
        "connections_back_after_s": back_after,
        **after,
    }
    degraded = []
    if back_after is not None and back_after > seconds + 1:
        degraded.append(f"connections came back only {back_after:.1f} s after the disconnect")
    ok = (
        f"all {burst} connections back {back_after:.1f} s after the disconnect "
        f"({running} queries ran on after it)"
        if back_after is not None
        else ""
    )
    outcome, summary = verdict(broken, degraded, ok)
    return Outcome(outcome, summary, numbers)


async def _write_must_fail(target: Target, scenario: str, path: str) -> Outcome:
    """POST *path* a few times; every answer must be non-2xx and nothing may be written."""
    await pool(target)
    requests = target.depth(3, 10)
    mark = marker(target, scenario)
    async with target.client() as client:
        seen = [
            (await call(client.post(path, params={"marker": mark})))[0] for _ in range(requests)
        ]
    written = await rows_titled(target, mark)
    seed = await rows_titled(target, "todo 1")
    after, broken = await _aftermath(target)
    acknowledged = sum(is_success(s) for s in seen)
    numbers = {
        "requests": requests,
        "statuses": statuses(seen),
        "acknowledged": acknowledged,
        "rows_written": len(written),
        **after,
    }
    if acknowledged:
        broken.append(f"{acknowledged}/{requests} got a 2xx for a write that must fail")
    if written:
        broken.append(f"{len(written)} rows of failed requests are in the table")
    if "todo 1" not in seed:
        broken.append("seed row 1 was changed")
    outcome, summary = verdict(
        broken, [], f"{requests}/{requests} answered {'/'.join(statuses(seen))}, nothing written"
    )
    return Outcome(outcome, summary, numbers)


@scenario(
    brief=lambda n: f"{_codes(n['statuses'])} · {n['rows_written']} rows written",
    unconditional="keeps the writes of a failed request",
)
async def handler_error(target: Target) -> Outcome:
    """Handler error after a write: the row is flushed, then the handler raises."""
    return await _write_must_fail(target, "handler-error", "/lab/write-then-raise")


@scenario(
    brief=lambda n: f"{_codes(n['statuses'])} · {n['rows_written']} rows written",
    unconditional="answers 2xx for a failed commit",
)
async def failed_commit(target: Target) -> Outcome:
    """Failed commit: a new row plus a duplicate primary key, detected only at flush/commit."""
    return await _write_must_fail(target, "failed-commit", "/lab/failing-commit")


@scenario(
    brief=lambda n: (
        f"{_codes(n['statuses'])} · {n['acknowledged_not_committed']}/{n['requests']} "
        f"2xx not committed"
    ),
    unconditional="acknowledges writes before they commit",
)
async def acknowledged(target: Target) -> Outcome:
    """Acknowledged before committed: a write whose COMMIT fails must not be answered 2xx.

    ``POST /lab/deferred-write`` adds a row and breaks a deferred unique constraint in the
    lab's temporary table: the flush succeeds, PostgreSQL refuses the COMMIT. The suite's
    contract commits before the response, so the right answer is a 5xx; a strategy that
    commits after the response (a library's autocommit) answers 2xx for a write that is
    not in the table. Each request's row is looked for after a short wait, so a commit
    that runs after the response has had its chance.
    """
    await pool(target)
    requests = target.depth(5, 10)
    mark = marker(target, "acknowledged")
    async with target.client() as client:
        seen = [
            (await call(client.post("/lab/deferred-write", params={"marker": f"{mark}-{i}"})))[0]
            for i in range(requests)
        ]
    await asyncio.sleep(0.5)
    written = set(await rows_titled(target, mark))
    after, broken = await _aftermath(target)
    acked = [i for i, status in enumerate(seen) if is_success(status)]
    missing = sum(f"{mark}-{i}" not in written for i in acked)
    numbers = {
        "requests": requests,
        "statuses": statuses(seen),
        "acknowledged": len(acked),
        "acknowledged_not_committed": missing,
        "rows_written": len(written),
        **after,
    }
    codes = "/".join(statuses(seen))
    if missing:
        broken.append(f"{missing}/{requests} failing commits answered {codes}")
    if written:
        broken.append(f"{len(written)} rows of writes whose commit must fail are in the table")
    outcome, summary = verdict(
        broken, [], f"{requests}/{requests} failing commits answered {codes}, nothing written"
    )
    return Outcome(outcome, summary, numbers)


@scenario(
    brief=lambda n: (
        f"{n['api_read_misses'] + n['db_read_misses']} missed reads / {n['writes']} writes"
    ),
    unconditional="a write is not visible to the next read",
)
async def visibility(target: Target) -> Outcome:
    """Write visibility: after a 201 from POST /todos, does the very next read see the row?

    The read goes through a second HTTP client (its own connection) and straight to
    PostgreSQL; a miss is polled until it shows up (the delay is reported).
    """
    writes = target.depth(20, 100)
    mark = marker(target, "visibility")
    api_misses = db_misses = failed = 0
    delays: list[float] = []
    async with target.client() as writer, target.client() as reader:
        for i in range(writes):
            status, response = await call(writer.post("/todos", json={"title": f"{mark}-{i}"}))
            acked = time.monotonic()
            if response is None or status != "201":
                failed += 1
                continue
            todo_id = response.json()["id"]
            read = (await call(reader.get(f"/todos/{todo_id}")))[0]
            in_db = f"{mark}-{i}" in await rows_titled(target, f"{mark}-{i}")
            api_misses += read != "200"
            db_misses += not in_db
            if read == "200" and in_db:
                delays.append(0.0)
                continue
            while read != "200" and time.monotonic() - acked < 2:
                await asyncio.sleep(0.01)
                read = (await call(reader.get(f"/todos/{todo_id}")))[0]
            delays.append(time.monotonic() - acked)
    numbers = {
        "writes": writes,
        "failed_writes": failed,
        "api_read_misses": api_misses,
        "db_read_misses": db_misses,
        "max_delay_s": max(delays, default=0.0),
    }
    broken = []
    if api_misses or db_misses:
        broken.append(
            f"{api_misses} API reads and {db_misses} database reads missed an acked write"
        )
    if failed:
        broken.append(f"{failed}/{writes} writes failed")
    outcome, summary = verdict(
        broken, [], f"{writes}/{writes} acknowledged writes visible to the next read"
    )
    return Outcome(outcome, summary, numbers)


@scenario(
    brief=lambda n: (
        f"{n['errors']}/{n['requests']} failed · max {n['max_s']:.2f} s (ideal {n['ideal_s']:.2f})"
    ),
    condition="no more slow queries than the pool",
)
async def exhaustion(target: Target) -> Outcome:
    """Pool exhaustion: 4 × pool size concurrent slow queries (pg_sleep), /health alongside.

    Four waves of ``seconds`` fit well inside the pool timeout, so a fair pool serves
    all of them; timeouts, hangs and a slow /health (blocked event loop) are reported.
    """
    await pool(target)
    burst, seconds = 4 * target.pool_size, target.depth(0.3, 0.4)
    ideal = math.ceil(burst / target.pool_size) * seconds
    health: list[float] = []
    done = asyncio.Event()

    async def one(client: httpx.AsyncClient) -> tuple[str, float]:
        started = time.monotonic()
        status, _ = await call(client.get("/lab/sleep", params={"seconds": seconds}))
        return status, time.monotonic() - started

    async def ping(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            started = time.monotonic()
            await call(client.get("/health"))
            health.append(time.monotonic() - started)
            await asyncio.sleep(0.05)

    timeout = target.pool_timeout + ideal + 10
    async with target.client(timeout=timeout, connections=burst + 1) as client:
        pinger = asyncio.create_task(ping(client))
        results = await asyncio.gather(*(one(client) for _ in range(burst)))
        done.set()
        await pinger
    seen = [status for status, _ in results]
    latencies = [s for _, s in results]
    after, broken = await _aftermath(target)
    errors = sum(not is_success(s) for s in seen)
    hung = sum(s.endswith("Timeout") for s in seen)
    numbers = {
        "requests": burst,
        "query_seconds": seconds,
        "ideal_s": ideal,
        "statuses": statuses(seen),
        "errors": errors,
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
        "max_s": max(latencies),
        "health_p99_ms": 1000 * (percentile(health, 99) or 0.0),
        **after,
    }
    if hung:
        broken.append(f"{hung} requests hung past {timeout:.0f} s")
    degraded = [f"{errors}/{burst} failed ({', '.join(statuses(seen))})"] if errors else []
    outcome, summary = verdict(
        broken,
        degraded,
        f"{burst}/{burst} served, max {max(latencies):.2f} s (ideal {ideal:.2f} s)",
    )
    return Outcome(outcome, summary, numbers)


def _tree_rss(process: psutil.Process) -> int:
    """Resident bytes of the server process and its children (workers, if any)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


SOAK_EVERY = 0.5  # s between the soak's samples of RSS, pool and registry


def _soak_request(client: httpx.AsyncClient) -> Any:
    roll = random.random()
    if roll < 0.7:
        return read_random(client)
    if roll < 0.9:
        return client.post("/todos", json={"title": "soak"})
    return client.get("/health")


@scenario(
    brief=lambda n: (
        f"{n['errors']}/{n['requests']} failed · RSS {n['rss_start_mb']:.0f}→"
        f"{n['rss_end_mb']:.0f} MB"
        + (f" · registry ≤ {n['registry_max']}" if n["registry_max"] is not None else "")
    ),
    unconditional="grows under sustained load",
)
async def soak(target: Target) -> Outcome:
    """Soak: sustained mixed load; server RSS and scoped registry size over time.

    8 clients (70 % reads, 20 % writes, 10 % /health) for ``--soak`` seconds; the
    server's RSS, pool and registry are sampled every :data:`SOAK_EVERY` s on a fixed
    schedule (due at 0, 0.5, 1, … s): ``ceil(soak / SOAK_EVERY)`` samples however long each
    takes on a loaded server (a late one delays the next, never drops it; each row keeps
    the time it was taken).
    """
    try:
        lab = await pool(target)
    except Skip:
        lab = None
    process = psutil.Process(target.server.pid)
    samples: list[Sample] = []
    trace: list[tuple[float, float, int | None, int | None]] = []
    t0 = time.monotonic()
    async with (
        target.client(connections=8) as client,
        loaded(client, _soak_request, concurrency=8, t0=t0, samples=samples),
    ):
        for due in range(math.ceil(target.soak_seconds / SOAK_EVERY)):
            await asyncio.sleep(max(0.0, t0 + due * SOAK_EVERY - time.monotonic()))
            stats = await pool(target) if lab is not None else {}
            rss = _tree_rss(process) / 2**20
            trace.append(
                (time.monotonic() - t0, rss, stats.get("registry"), stats.get("checked_out"))
            )
        await asyncio.sleep(max(0.0, t0 + target.soak_seconds - time.monotonic()))
    elapsed = time.monotonic() - t0
    errors = sum(not s.ok for s in samples)
    half = [row for row in trace if row[0] >= elapsed / 2]
    rss_mid = half[0][1] if half else trace[0][1]
    rss_end = trace[-1][1]
    registry = [row[2] for row in trace if row[2] is not None]
    numbers: dict[str, Any] = {
        "seconds": elapsed,
        "requests": len(samples),
        "rps": len(samples) / elapsed,
        "errors": errors,
        "statuses": statuses(samples),
        "rss_start_mb": trace[0][1],
        "rss_end_mb": rss_end,
        "rss_growth_second_half_pct": 100 * (rss_end - rss_mid) / rss_mid,
        "registry_max": max(registry, default=None),
    }
    broken: list[str] = []
    if lab is not None:
        after, broken = await _aftermath(target)
        numbers |= after
    degraded = []
    if errors:
        degraded.append(f"{errors}/{len(samples)} requests failed")
    if numbers["rss_growth_second_half_pct"] > 10:
        degraded.append(f"RSS grew {numbers['rss_growth_second_half_pct']:.0f} % in the 2nd half")
    outcome, summary = verdict(
        broken,
        degraded,
        f"{len(samples)} requests, RSS {trace[0][1]:.0f}→{rss_end:.0f} MB, "
        f"registry max {numbers['registry_max']}",
    )
    return Outcome(outcome, summary, numbers, {"soak": [list(row) for row in trace]})


# The postmaster asks for SIGTERM when the *thread* that started it exits (PR_SET_PDEATHSIG),
# which would begin a smart shutdown after the scenario: start it from a thread that lives on.
_POSTGRES_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sessionbench-postgres")


RESTART_LIMIT = 15.0  # s after PostgreSQL is back that a server still failing is broken


async def pg_restart_shared(targets: list[Target]) -> list[Outcome | Exception]:
    """``pg_restart`` for every target at once, through one PostgreSQL stop/start mid-load
    and one while idle: each target gets its own 4 clients, its own recovery wait (from the
    shared moment PostgreSQL was back) and its own verdict, the same numbers a cell of its
    own records. A target whose probe raised gets the exception in its place."""
    pg = targets[0].postgres
    if pg is None:
        raise Skip("DATABASE_URL points at an external server, which this run cannot restart")
    loop = asyncio.get_running_loop()
    back = asyncio.Event()
    times: dict[str, float] = {}
    t0 = time.monotonic()

    async def mid_load(target: Target) -> tuple[list[Sample], bool]:
        samples: list[Sample] = []
        recovered = False
        async with (
            target.client(timeout=target.pool_timeout + 5, connections=4) as client,
            loaded(client, read_random, concurrency=4, t0=t0, samples=samples),
        ):
            await back.wait()
            up = times["up"]
            while time.monotonic() - t0 < up + RESTART_LIMIT:
                await asyncio.sleep(0.1)
                now = time.monotonic() - t0
                last_fail = max((s.end for s in samples if not s.ok), default=0.0)
                if now - max(last_fail, up) >= 1.0 and any(s.ok and s.start > up for s in samples):
                    recovered = True
                    break
        return samples, recovered

    loads = [asyncio.create_task(mid_load(target)) for target in targets]
    try:
        await asyncio.sleep(1.0)
        times["down"] = time.monotonic() - t0
        await loop.run_in_executor(_POSTGRES_THREAD, pg.stop)
        await asyncio.sleep(1.0)
        await loop.run_in_executor(_POSTGRES_THREAD, pg.start)
        times["up"] = time.monotonic() - t0
    except BaseException:
        for task in loads:
            task.cancel()
        await asyncio.gather(*loads, return_exceptions=True)
        raise
    back.set()
    loaded_runs = await asyncio.gather(*loads, return_exceptions=True)
    # Second restart while every server is idle: their pools still hold connections to the
    # old server processes, and nothing has told them they are gone.
    await loop.run_in_executor(_POSTGRES_THREAD, pg.stop)
    await loop.run_in_executor(_POSTGRES_THREAD, pg.start)

    async def verdict_of(target: Target, run: Any) -> Outcome | Exception:
        if isinstance(run, BaseException):
            if not isinstance(run, Exception):
                raise run
            return run
        samples, recovered = run
        try:
            return await _restart_verdict(target, samples, recovered, times["down"], times["up"])
        except Exception as exc:
            return exc

    return list(
        await asyncio.gather(*(verdict_of(t, r) for t, r in zip(targets, loaded_runs, strict=True)))
    )


async def _restart_verdict(
    target: Target, samples: list[Sample], recovered: bool, down: float, up: float
) -> Outcome:
    """One target's restart outcome: the idle-restart probe, its aftermath, the numbers."""
    outage = [s for s in samples if not s.ok and down <= s.end <= up]
    later = [s for s in samples if not s.ok and s.end > up]
    recovery = max((s.end for s in later), default=up) - up
    end = max(s.end for s in samples)
    series = [
        [
            round(b * 0.25, 2),
            sum(1 for s in samples if b * 0.25 <= s.end < (b + 1) * 0.25 and s.ok),
            sum(1 for s in samples if b * 0.25 <= s.end < (b + 1) * 0.25 and not s.ok),
        ]
        for b in range(math.floor(end / 0.25))  # whole buckets only
    ]
    async with target.client(timeout=target.pool_timeout + 5) as client:
        idle = [(await call(read_random(client)))[0] for _ in range(10)]
    stale = sum(not is_success(s) for s in idle)
    after, broken = await _aftermath(target)
    numbers = {
        "requests": len(samples),
        "statuses": statuses(samples),
        "errors_during_outage": len(outage),
        "errors_after_restart": len(later),
        "recovery_s": recovery,
        "recovered": recovered,
        "errors_after_idle_restart": stale,
        "idle_restart_statuses": statuses(idle),
        **after,
    }
    if not recovered:
        broken.append(f"still failing {RESTART_LIMIT:.0f} s after PostgreSQL came back")
    degraded = []
    if later:
        degraded.append(f"{len(later)} requests failed after PostgreSQL was back")
    if stale:
        degraded.append(
            f"{stale} of the first 10 requests after a restart during idle time failed "
            f"(stale pooled connections, {'despite' if target.pre_ping else 'no'} pre-ping)"
        )
    outcome, summary = verdict(
        broken,
        degraded,
        f"{len(outage)} failed in the outage, none after it; recovered in {recovery:.2f} s",
    )
    timeline = {"buckets": series, "down": down, "up": up, "bucket_s": 0.25}
    return Outcome(outcome, summary, numbers, {"restart": timeline})


@scenario(
    brief=lambda n: (
        f"{n['errors_during_outage']} failed in outage, {n['errors_after_restart']} after · "
        f"recovered {n['recovery_s']:.2f} s · {n['errors_after_idle_restart']}/10 failed "
        f"after idle restart"
    ),
    condition="pool_pre_ping for database restarts",
    fresh_server=True,
    shared=pg_restart_shared,
    pre_ping_sweep=True,
    repeated=True,
)
async def pg_restart(target: Target) -> Outcome:
    """PostgreSQL restart mid-load: errors in the outage, time to recover, leaked connections.

    4 clients read continuously; after 1 s PostgreSQL is stopped (fast shutdown),
    stays down for 1 s and is started again. Recovery is the time from PostgreSQL
    being back until the last failed request; the run waits for 1 s without failures.
    Then PostgreSQL is restarted once more while the server is idle, and the first 10
    requests after it show what stale pooled connections cost. The matrix runs this for
    many servers at once through one pair of restarts (``pg_restart_shared``).
    """
    found = (await pg_restart_shared([target]))[0]
    if isinstance(found, BaseException):
        raise found
    return found


# What the runner reads, from the registry (each scenario's decorator says it).
SCENARIOS: dict[str, Scenario] = {name: s.probe for name, s in REGISTRY.items()}
"""Every scenario, in run order."""
FRESH_SERVER = {name for name, s in REGISTRY.items() if s.fresh_server}
SHARED: dict[str, SharedScenario] = {n: s.shared for n, s in REGISTRY.items() if s.shared}
PRE_PING_SWEEP = {name for name, s in REGISTRY.items() if s.pre_ping_sweep}
REPEATED = {name for name, s in REGISTRY.items() if s.repeated}
BRIEF: dict[str, Brief] = {name: s.brief for name, s in REGISTRY.items() if s.brief}
UNCONDITIONAL = {name: s.unconditional for name, s in REGISTRY.items() if s.unconditional}
CONDITIONS = {name: s.condition for name, s in REGISTRY.items() if s.condition}


def label(scenario: Scenario) -> str:
    """First line of the scenario's docstring."""
    doc = scenario.__doc__ or scenario.__name__
    return doc.strip().splitlines()[0].rstrip(".")
