"""The requests ``sessionbench cost`` sends: the load scenarios' endpoints, one operation each.

Operation *i* of a repeat always touches the same row (ids and offsets are a function of
*i*), so every repeat sends exactly the same requests. The write cycle is POST + PATCH +
DELETE of the row it created: three requests per operation. Requests go through
``bench.cost.client`` (each in one write), one keep-alive connection per simulated client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from bench.common.database import spread_row
from bench.cost.client import Connection, Lockstep, Response

Op = Callable[[Connection, int], Awaitable[None]]


class UnexpectedResponse(RuntimeError):
    """The server answered with another status than the contract's."""


def _expect(response: Response, status: int) -> Response:
    if response.status_code != status:
        raise UnexpectedResponse(
            f"{response.method} {response.path} → {response.status_code} "
            f"(expected {status}): {response.text[:200]}"
        )
    return response


async def _get(client: Connection, i: int) -> None:
    _expect(await client.get(f"/todos/{spread_row(i)}"), 200)


async def _list(client: Connection, i: int) -> None:
    _expect(await client.get(f"/todos?limit=20&offset={(i * 20) % 1000}"), 200)


async def _multi(client: Connection, i: int) -> None:
    _expect(await client.get(f"/todos/{spread_row(i)}/multi?queries=10"), 200)


async def _write(client: Connection, i: int) -> None:
    created = _expect(await client.post("/todos", json={"title": "cost"}), 201).json()
    url = f"/todos/{created['id']}"
    _expect(await client.patch(url, json={"done": True}), 200)
    _expect(await client.delete(url), 204)


async def _health(client: Connection, i: int) -> None:
    _expect(await client.get("/health"), 200)


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    requests_per_op: int
    op: Op


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("get", "GET /todos/{id}", 1, _get),
        Endpoint("list", "GET /todos?limit=20", 1, _list),
        Endpoint("multi", "GET /todos/{id}/multi?queries=10", 1, _multi),
        Endpoint("write", "POST + PATCH + DELETE /todos", 3, _write),
        Endpoint("health", "GET /health", 1, _health),
    )
}


def _state(stat_path: str) -> str:
    with open(stat_path) as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def _asleep(pid: int) -> bool:
    """Every thread of *pid* asleep (a process gone counts as asleep)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        return all(_state(f"/proc/{pid}/task/{t}/stat") in ("S", "D", "I") for t in tasks)
    except OSError:
        return True


@dataclass
class Server:
    """The server process ``drive`` holds while it writes a burst, and how it waits for that
    process to be idle: every thread asleep and the event loop's thread in ``epoll_wait``
    (``/proc/PID/task/*/stat`` and ``wchan``), twice in a row *settle* seconds apart; and
    every PostgreSQL backend serving it (``backends``: local ``postgres`` processes) asleep
    too. A server waiting for a reply sleeps in ``epoll_wait`` just like an idle one; the
    backend still working on the query, or woken by it and waiting for a core, is not
    asleep (the kernel marks a receiver runnable within the sender's write). Without the
    backends' states a reply delayed past both checks — a busy machine's scheduler — let the
    next request in while the last one's tail (the pool's ROLLBACK on return) was still
    running, and the interleaving changed the count (one repeat +1.26 M, 0.66 %)."""

    pid: int
    settle: float = 0.002
    timeout: float = 5.0
    backends: tuple[int, ...] = ()

    def idle(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/wchan") as wchan:
                # "0" or nothing: a kernel that does not say; the threads' states still do
                if wchan.read().strip() not in ("do_epoll_wait", "ep_poll", "0", ""):
                    return False
        except OSError:  # gone: the burst's write fails and says so
            return True
        return _asleep(self.pid) and all(_asleep(pid) for pid in self.backends)

    async def wait_idle(self) -> None:
        deadline = time.monotonic() + self.timeout
        calm = 0
        while calm < 2 and time.monotonic() < deadline:  # busy that long: send anyway
            await asyncio.sleep(self.settle)
            calm = calm + 1 if self.idle() else 0

    async def watch_backends(self, conn: asyncpg.Connection) -> None:
        """Watch the backends of *conn*'s database other than *conn*'s own that are
        ``postgres`` processes on this machine (none for a remote ``DATABASE_URL``: then
        only the server's own threads say whether it is idle)."""
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        self.backends = tuple(r["pid"] for r in pids if _is_postgres(r["pid"]))

    def lockstep(self, members: int) -> Lockstep:
        return Lockstep(
            members,
            self.wait_idle,
            hold=lambda: self._signal(signal.SIGSTOP),
            release=lambda: self._signal(signal.SIGCONT),
        )

    def _signal(self, sig: signal.Signals) -> None:
        # A server already gone (it died, or a Ctrl-C's clean-up stopped it under a lane
        # still driving it) is not this burst's error: its write or reply fails and says
        # so (ProtocolError), and an Interrupted in flight is not replaced by this one.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip() in ("postgres", "postmaster")
    except OSError:
        return False


async def drive(
    server: Server, connections: list[Connection], endpoint: Endpoint, ops: int
) -> None:
    """*ops* operations from one concurrent client per connection (client j does j,
    j + clients, …), each round of requests sent in lockstep (``bench.cost.client``)."""
    clients = min(len(connections), ops)
    lockstep = server.lockstep(clients)

    async def one(first: int) -> None:
        connection = connections[first]
        connection.lockstep = lockstep
        try:
            for i in range(first, ops, clients):
                await endpoint.op(connection, i)
        finally:
            connection.lockstep = None
            await lockstep.leave()

    await asyncio.gather(*(one(j) for j in range(clients)))
