"""One variant's cost rows: warm-up, then *repeats* × (zero, *ops* operations, dump) per
endpoint and client count, on keep-alive connections held for the whole variant.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import database
from bench.cost import profile
from bench.cost.callgrind import Dump
from bench.cost.client import Connection
from bench.cost.endpoints import ENDPOINTS, Server, drive
from bench.cost.profile import Profile
from bench.cost.valgrind import CallgrindServer

WARMUP_REPEATS = 2
REQUEST_TIMEOUT = 300.0  # s: 16 queued requests under callgrind on a busy machine


@dataclass(frozen=True)
class Plan:
    """What to measure per variant: endpoints × client counts, ops per repeat, repeats."""

    endpoints: list[str]
    clients: list[int]
    ops: dict[str, int]  # endpoint → operations per repeat (rounded up to a multiple of clients)
    repeats: int
    warmup: int  # operations (at least WARMUP_REPEATS repeats') before each group's first repeat
    first_warmup: int  # operations of every endpoint once after instrumentation is switched on
    concurrent: list[str] | None = None  # endpoints measured at clients > 1 (None: all)
    # operations per repeat at clients > 1 (None: ops): rounds of concurrent requests meet
    # PostgreSQL's replies in a different order each time; more rounds settle GETs, not write
    # cycles (the collector's work follows the requests in flight: command.PRESETS)
    concurrent_ops: dict[str, int] | None = None

    def groups(self) -> list[tuple[str, int]]:
        return [
            (e, c)
            for c in self.clients
            for e in self.endpoints
            if c == 1 or self.concurrent is None or e in self.concurrent
        ]

    def ops_for(self, endpoint: str, clients: int) -> int:
        ops = self.ops[endpoint]
        if clients > 1:
            ops = (self.concurrent_ops or {}).get(endpoint, ops)
        return -(-ops // clients) * clients

    def settings(self) -> dict[str, Any]:
        return {
            "endpoints": self.endpoints,
            "clients": self.clients,
            "ops_per_repeat": self.ops,
            "concurrent_ops_per_repeat": self.ops | (self.concurrent_ops or {}),
            "repeats": self.repeats,
            "warmup_ops": self.warmup,
            "first_warmup_ops": self.first_warmup,
            "concurrent_endpoints": self.concurrent or self.endpoints,
        }


def spread_percent(values: list[float]) -> float:
    """(max − min) / median of the repeats, in percent."""
    return 100 * (max(values) - min(values)) / statistics.median(values)


IDLE_SECONDS = 2.0


async def idle_rate(server: CallgrindServer) -> float:
    """Instructions per wall-clock second of the idle server (no tick: see
    ``serve_hook``): recorded to show how little of a repeat is time-driven, not subtracted."""
    await asyncio.to_thread(server.collect_garbage)
    await asyncio.to_thread(server.zero)
    started = time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    total = await asyncio.to_thread(server.dump, "idle")
    return total / (time.monotonic() - started)


async def measure(
    server: CallgrindServer,
    plan: Plan,
    progress: Callable[[str], None],
    profiles: Callable[[Profile], object] | None = None,
) -> list[dict[str, Any]]:
    """Every (endpoint, clients) row of *plan* for the running, instrumented *server*; each
    row's per-function profile (from its repeats' dumps) handed to *profiles*."""
    rows = []
    connections_of = {
        c: [Connection("127.0.0.1", server.port, REQUEST_TIMEOUT) for _ in range(c)]
        for c in plan.clients
    }
    held = Server(server.pid)
    conn = await database.connect(server.url, app_name="sessionbench-cost-rewind")
    try:
        # Warm-ups run with instrumentation off (several times faster under valgrind): what
        # they are for is the interpreter's state (specialised code, caches, the pool's
        # connections), which does not depend on what valgrind records. Switching it on or
        # off happens only while the server is idle in epoll_wait, as the first switch-on
        # always did, and the counters are zeroed after it.
        for name in plan.endpoints:  # every endpoint's code paths and caches once
            await drive(
                held, connections_of[plan.clients[0]][:1], ENDPOINTS[name], plan.first_warmup
            )
        await held.watch_backends(conn)
        idle: float | None = None
        for name, clients in plan.groups():
            endpoint = ENDPOINTS[name]
            connections = connections_of[clients]
            ops = plan.ops_for(name, clients)
            progress(f"{name}, {clients} client{'s' if clients > 1 else ''}")
            # discarded repeats: CPython's adaptive interpreter still re-tries specialising
            # some instructions after one (callgrind: 629, 452, 169 attempts in three
            # repeats of 24 write cycles after a single warm-up repeat, +0.1 % in the first)
            await database.rewind_ids(conn)
            await drive(held, connections, endpoint, max(plan.warmup, WARMUP_REPEATS * ops))
            await held.watch_backends(conn)  # the pool has grown to what these clients use
            await held.wait_idle()
            await asyncio.to_thread(server.instrument, True)
            if idle is None:
                idle = await idle_rate(server)
            totals: list[float] = []
            seconds: list[float] = []
            dumps: list[Dump] = []
            for repeat in range(plan.repeats):
                # the write cycle's rows get the same ids in every repeat: the same digits
                # in URLs and JSON, the same keys in the session's identity map
                await database.rewind_ids(conn)
                await asyncio.to_thread(server.collect_garbage)
                # the signal handler's return and the loop turn that reads its wake-up
                # byte finish before the zeroing, not in the repeat
                await held.wait_idle()
                await asyncio.to_thread(server.zero)
                started = time.monotonic()
                await drive(held, connections, endpoint, ops)
                elapsed = time.monotonic() - started
                # a request's work goes on after its response is sent (the session closes,
                # the pool's ROLLBACK on return goes to PostgreSQL and its reply is read):
                # the last request's share of it is counted in its repeat, never cut off
                # by a dump that comes first in some repeats and later in others
                await held.wait_idle()
                label = f"{name}-c{clients}-r{repeat + 1}"
                total, dump = await asyncio.to_thread(
                    server.dump_profile, label, parse=profiles is not None
                )
                totals.append(total)
                if dump is not None:
                    dumps.append(dump)
                seconds.append(elapsed)
            await asyncio.to_thread(server.instrument, False)
            per_request = [t / (ops * endpoint.requests_per_op) for t in totals]
            if profiles is not None:
                profiles(
                    profile.from_dumps(
                        dumps,
                        variant=server.variant.name,
                        endpoint=name,
                        clients=clients,
                        requests=ops * endpoint.requests_per_op,
                    )
                )
            rows.append(
                {
                    "variant": server.variant.name,
                    "endpoint": name,
                    "clients": clients,
                    "instructions_per_request": statistics.median(per_request),
                    "instructions_per_op": statistics.median(t / ops for t in totals),
                    "requests_per_op": endpoint.requests_per_op,
                    "spread_percent": spread_percent(per_request),
                    "spread": "(max - min) / median of the repeats",
                    "repeats": plan.repeats,
                    "requests": ops * endpoint.requests_per_op,
                    "ops": ops,
                    "per_repeat": per_request,
                    "seconds_per_repeat": seconds,
                    "idle_instructions_per_second": idle,
                }
            )
    finally:
        await conn.close()
        for connections in connections_of.values():
            for connection in connections:
                await connection.close()
    return rows
