"""Lab routes of the context family: whoever needs the database opens a session for the block.

Concurrent work opens one session per task; a background task or a streaming generator
opens its own (``Session.begin()`` for writes), as a user of explicit sessions would.
"""

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import StreamingResponse

from variants.engine import Session
from variants.lab.common import (
    BACKEND_PID,
    SLEEP,
    FanOut,
    LabError,
    Marker,
    Pages,
    PageSize,
    Seconds,
    deferred_write,
    duplicate,
    lab_router,
    line,
    marked,
    on_request,
    page,
    pool_router,
)
from variants.models import Todo


async def load(todo_id: int) -> int | None:
    async with Session() as session:
        todo = await session.get(Todo, todo_id)
        return todo.id if todo else None


async def write_later(marker: str, delay: float) -> None:
    await asyncio.sleep(delay)
    async with Session.begin() as session:
        pid = await session.scalar(BACKEND_PID)
        session.add(Todo(title=marked(marker, pid)))


@on_request
def context_lab_router() -> APIRouter:
    """The ``/lab`` routes for a variant whose handlers open ``async with Session()`` blocks."""
    router = lab_router()
    router.include_router(pool_router(lambda: None))

    @router.get("/fanout")
    async def fanout(n: FanOut = 2) -> list[int]:
        found = await asyncio.gather(*(load(i) for i in range(1, n + 1)))
        return [i for i in found if i is not None]

    @router.post("/background", status_code=202)
    async def background(tasks: BackgroundTasks, marker: Marker, delay: Seconds = 0.5) -> int:
        async with Session() as session:
            pid: int = await session.scalar(BACKEND_PID)
        tasks.add_task(write_later, marker, delay)
        return pid

    @router.get("/stream")
    async def stream(
        pages: Pages = 5, size: PageSize = 20, delay: Seconds = 0.2
    ) -> StreamingResponse:
        async def rows() -> AsyncIterator[str]:
            for number in range(pages):
                async with Session() as session:
                    todos = await session.scalars(page(number, size))
                for todo in todos:
                    yield line(todo)
                await asyncio.sleep(delay)

        return StreamingResponse(rows(), media_type="application/x-ndjson")

    @router.get("/sleep")
    async def sleep(seconds: Seconds = 1.0) -> float:
        async with Session() as session:
            await session.execute(SLEEP, {"seconds": seconds})
        return seconds

    @router.post("/write-then-raise")
    async def write_then_raise(marker: Marker) -> None:
        async with Session.begin() as session:
            session.add(Todo(title=marked(marker)))
            await session.flush()
            raise LabError("the handler failed after its write")

    @router.post("/failing-commit", status_code=201)
    async def failing_commit(marker: Marker) -> None:
        async with Session.begin() as session:
            session.add_all(duplicate(marker))

    @router.post("/deferred-write", status_code=201)
    async def deferred(marker: Marker) -> None:
        async with Session.begin() as session:
            await deferred_write(session, marker)

    return router
