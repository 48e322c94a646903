"""Lab routes of the scoped family: every handler, task and generator uses the global session.

``current()`` returns the variant's global session (the ``async_scoped_session`` proxy,
or whatever the variant's getter hands out); nothing here opens a session of its own,
as a user of a global scoped session would not.
"""

import asyncio
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import async_scoped_session

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
from variants.queries import AnySession


@on_request
def scoped_lab_router(current: Callable[[], AnySession]) -> APIRouter:
    """The ``/lab`` routes for a variant whose handlers reach the session through *current*."""
    router = lab_router()

    def registry_size() -> int | None:
        proxy = current()
        if isinstance(proxy, async_scoped_session):
            return len(proxy.registry.registry)
        return None

    router.include_router(pool_router(registry_size))

    @router.get("/fanout")
    async def fanout(n: FanOut = 2) -> list[int]:
        async def load(todo_id: int) -> int | None:
            todo = await current().get(Todo, todo_id)
            return todo.id if todo else None

        found = await asyncio.gather(*(load(i) for i in range(1, n + 1)))
        return [i for i in found if i is not None]

    async def write_later(marker: str, delay: float) -> None:
        await asyncio.sleep(delay)
        session = current()
        pid = await session.scalar(BACKEND_PID)
        session.add(Todo(title=marked(marker, pid)))
        await session.commit()

    @router.post("/background", status_code=202)
    async def background(tasks: BackgroundTasks, marker: Marker, delay: Seconds = 0.5) -> int:
        pid: int = await current().scalar(BACKEND_PID)
        tasks.add_task(write_later, marker, delay)
        return pid

    @router.get("/stream")
    async def stream(
        pages: Pages = 5, size: PageSize = 20, delay: Seconds = 0.2
    ) -> StreamingResponse:
        async def rows() -> AsyncIterator[str]:
            for number in range(pages):
                for todo in await current().scalars(page(number, size)):
                    yield line(todo)
                await asyncio.sleep(delay)

        return StreamingResponse(rows(), media_type="application/x-ndjson")

    @router.get("/sleep")
    async def sleep(seconds: Seconds = 1.0) -> float:
        await current().execute(SLEEP, {"seconds": seconds})
        return seconds

    @router.post("/write-then-raise")
    async def write_then_raise(marker: Marker) -> None:
        session = current()
        session.add(Todo(title=marked(marker)))
        await session.flush()
        raise LabError("the handler failed after its write")

    @router.post("/failing-commit", status_code=201)
    async def failing_commit(marker: Marker) -> None:
        session = current()
        session.add_all(duplicate(marker))
        await session.commit()

    @router.post("/deferred-write", status_code=201)
    async def deferred(marker: Marker) -> None:
        session = current()
        await deferred_write(session, marker)
        await session.commit()

    return router
