"""The requests ``sessionbench cost`` sends: the load scenarios' endpoints, one operation each.

Operation *i* of a repeat always touches the same row (ids and offsets are a function of
*i*), so every repeat sends exactly the same requests. The write cycle is POST + PATCH +
DELETE of the row it created: three requests per operation. Requests go through
``bench.cost.client`` (each in one write), one keep-alive connection per simulated client.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


def _row_id(i: int) -> int:
    return 1 + (i * 7919) % 1000  # spread over the seed's first 1000 rows, same per repeat


async def _get(client: Connection, i: int) -> None:
    _expect(await client.get(f"/todos/{_row_id(i)}"), 200)


async def _list(client: Connection, i: int) -> None:
    _expect(await client.get(f"/todos?limit=20&offset={(i * 20) % 1000}"), 200)


async def _multi(client: Connection, i: int) -> None:
    _expect(await client.get(f"/todos/{_row_id(i)}/multi?queries=10"), 200)


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


@dataclass(frozen=True)
class Server:
    """How ``drive`` holds the server while it writes a burst: its pid and the pause before."""

    pid: int
    pause: float

    def lockstep(self, members: int) -> Lockstep:
        return Lockstep(
            members,
            self.pause,
            hold=lambda: os.kill(self.pid, signal.SIGSTOP),
            release=lambda: os.kill(self.pid, signal.SIGCONT),
        )


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
