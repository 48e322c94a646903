"""One full in-process request per variant and endpoint of the load scenarios (httpx.ASGITransport).

No network and no uvicorn, but the PostgreSQL round trips are in: the wall-clock time per
request of the app and its database, one request at a time. ``write`` runs POST, PATCH and
DELETE cycles as in the write scenario and is reported per request (a cycle's time / 3).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

import variants

Call = Callable[[httpx.AsyncClient], Awaitable[None]]


async def get_one(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/todos/{random.randint(1, 10_000)}")
    assert response.status_code == 200


async def list_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/todos", params={"limit": 20, "offset": 100})
    assert response.status_code == 200


async def multi(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/todos/{random.randint(1, 9_990)}/multi?queries=10")
    assert response.status_code == 200


async def write(client: httpx.AsyncClient) -> None:
    created = await client.post("/todos", json={"title": "micro"})
    url = f"/todos/{created.json()['id']}"
    assert (await client.patch(url, json={"done": True})).status_code == 200
    assert (await client.delete(url)).status_code == 204


# endpoint: (call, calls per round, requests per call)
ENDPOINTS: dict[str, tuple[Call, int, int]] = {
    "get": (get_one, 100, 1), "list": (list_page, 50, 1), "multi": (multi, 30, 1),
    "write": (write, 30, 3),
}  # fmt: skip


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
# In-process: only the variants of this environment (one with its own cannot be imported here).
@pytest.mark.parametrize("name", [n for n, v in variants.VARIANTS.items() if v.environment is None])
def test_request(name: str, endpoint: str, measure, benchmark, loop) -> None:
    call, batch, requests = ENDPOINTS[endpoint]
    benchmark.group = f"request-{endpoint}"
    benchmark.extra_info["label"] = f"{name}: {call.__name__} in-process, per request"
    benchmark.extra_info["requests_per_call"] = requests
    app = importlib.import_module(variants.get(name).module).app

    async def start() -> tuple[httpx.AsyncClient, AbstractAsyncContextManager[None]]:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bench")
        return client, lifespan

    client, lifespan = loop.run_until_complete(start())
    try:
        measure(lambda: call(client), batch=batch, per_call=requests)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
