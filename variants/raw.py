"""Raw baseline: an asyncpg pool and plain SQL, no SQLAlchemy: the driver's ceiling.

The pool has the same size as the engine's; each statement runs in autocommit, and
``release`` sends asyncpg's reset query, as a raw asyncpg app does.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import APIRouter, Response

from variants import driver_evidence
from variants import raw_queries as queries
from variants.app import create_app, location
from variants.pool_stats import acquire
from variants.schemas import (
    Limit,
    Offset,
    QueryCount,
    TodoCreate,
    TodoId,
    TodoOut,
    TodoUpdate,
    multi_ids,
)
from variants.settings import Settings

settings = Settings.from_env()
pool: asyncpg.Pool


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    global pool
    size = settings.pool_size + settings.max_overflow
    pool = await asyncpg.create_pool(
        settings.url.asyncpg,
        min_size=size,
        max_size=size,
        server_settings={"application_name": settings.app_name},
        init=_opened,
    )
    async with pool:
        yield


async def _opened(connection: asyncpg.Connection) -> None:
    driver_evidence.record(connection)  # which driver served (only when the runner asks)


router = APIRouter()


@router.post("/todos", status_code=201, response_model=TodoOut)
async def create_todo(data: TodoCreate, response: Response) -> Any:
    async with acquire(pool, settings.pool_timeout) as conn:
        todo = await queries.create_todo(conn, data=data)
    response.headers["Location"] = location(todo["id"])
    return todo


@router.get("/todos", response_model=list[TodoOut])
async def list_todos(limit: Limit = 20, offset: Offset = 0) -> Any:
    async with acquire(pool, settings.pool_timeout) as conn:
        return await queries.list_todos(conn, limit=limit, offset=offset)


@router.get("/todos/{todo_id}", response_model=TodoOut)
async def get_todo(todo_id: TodoId) -> Any:
    async with acquire(pool, settings.pool_timeout) as conn:
        return await queries.get_todo(conn, todo_id=todo_id)


@router.patch("/todos/{todo_id}", response_model=TodoOut)
async def update_todo(todo_id: TodoId, data: TodoUpdate) -> Any:
    async with acquire(pool, settings.pool_timeout) as conn:
        return await queries.update_todo(conn, todo_id=todo_id, data=data)


@router.delete("/todos/{todo_id}", status_code=204)
async def delete_todo(todo_id: TodoId) -> None:
    async with acquire(pool, settings.pool_timeout) as conn:
        await queries.delete_todo(conn, todo_id=todo_id)


@router.get("/todos/{todo_id}/multi", response_model=list[TodoOut])
async def multi_todos(todo_id: TodoId, count: QueryCount = None) -> Any:
    async with acquire(pool, settings.pool_timeout) as conn:
        return await queries.multi_todos(conn, ids=multi_ids(todo_id, count))


app = create_app(router, lifespan=lifespan)
