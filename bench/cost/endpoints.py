"""The requests ``sessionbench cost`` sends: the load scenarios' endpoints, one operation each.

Operation *i* of a repeat always touches the same row (ids and offsets are a function of
*i*), so every repeat sends exactly the same requests. The write cycle is POST + PATCH +
DELETE of the row it created: three requests per operation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Op = Callable[[httpx.AsyncClient, int], Awaitable[None]]


class UnexpectedResponse(RuntimeError):
    """The server answered with another status than the contract's."""


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url.path} → {response.status_code} "
            f"(expected {status}): {response.text[:200]}"
        )
    return response


def _row_id(i: int) -> int:
    return 1 + (i * 7919) % 1000  # spread over the seed's first 1000 rows, same per repeat


async def _get(client: httpx.AsyncClient, i: int) -> None:
    _expect(await client.get(f"/todos/{_row_id(i)}"), 200)


async def _list(client: httpx.AsyncClient, i: int) -> None:
    _expect(await client.get(f"/todos?limit=20&offset={(i * 20) % 1000}"), 200)


async def _multi(client: httpx.AsyncClient, i: int) -> None:
    _expect(await client.get(f"/todos/{_row_id(i)}/multi?queries=10"), 200)


async def _write(client: httpx.AsyncClient, i: int) -> None:
    created = _expect(await client.post("/todos", json={"title": "cost"}), 201).json()
    url = f"/todos/{created['id']}"
    _expect(await client.patch(url, json={"done": True}), 200)
    _expect(await client.delete(url), 204)


async def _health(client: httpx.AsyncClient, i: int) -> None:
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


async def drive(client: httpx.AsyncClient, endpoint: Endpoint, ops: int, clients: int) -> None:
    """*ops* operations from *clients* concurrent clients (client j does j, j+clients, …)."""

    async def one(first: int) -> None:
        for i in range(first, ops, clients):
            await endpoint.op(client, i)

    await asyncio.gather(*(one(j) for j in range(min(clients, ops))))
