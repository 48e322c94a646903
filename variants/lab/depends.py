"""Lab routes of the depends family: every handler takes the injected ``SessionDep`` session.

Work done after the handler (background tasks, streaming generators) gets that same
session handed over, as FastAPI's docs and most tutorials show it.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

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


async def write_later(session: AsyncSession, marker: str, delay: float) -> None:
    await asyncio.sleep(delay)
    pid = await session.scalar(BACKEND_PID)
    session.add(Todo(title=marked(marker, pid)))
    await session.commit()


@on_request
def depends_lab_router(
    session_dep: Any,
    *,
    commit: bool = True,
    engine_of: Callable[[], AsyncEngine] | None = None,
) -> APIRouter:
    """The ``/lab`` routes for a variant whose handlers declare ``session: session_dep``.

    *session_dep* is the variant's ``Annotated[AsyncSession, Depends(...)]`` alias.
    ``commit=False`` for a strategy or library that commits the request's session itself
    (a dependency that commits after ``yield``; a library whose docs tell handlers not
    to): the handlers' writes then only flush, as in
    ``variants.routes.injected_session_router``. A background task commits its own write
    either way: it runs after the request's session was handed back. *engine_of*: the
    engine behind the sessions when it is not the shared one.
    """
    router = lab_router()
    router.include_router(pool_router(lambda: None, *([engine_of] if engine_of else [])))

    @router.get("/fanout")
    async def fanout(session: session_dep, n: FanOut = 2) -> list[int]:
        found = await asyncio.gather(*(session.get(Todo, i) for i in range(1, n + 1)))
        return [todo.id for todo in found if todo is not None]

    @router.post("/background", status_code=202)
    async def background(
        session: session_dep, tasks: BackgroundTasks, marker: Marker, delay: Seconds = 0.5
    ) -> int:
        pid: int = await session.scalar(BACKEND_PID)
        tasks.add_task(write_later, session, marker, delay)
        return pid

    @router.get("/stream")
    async def stream(
        session: session_dep, pages: Pages = 5, size: PageSize = 20, delay: Seconds = 0.2
    ) -> StreamingResponse:
        async def rows() -> AsyncIterator[str]:
            for number in range(pages):
                for todo in await session.scalars(page(number, size)):
                    yield line(todo)
                await asyncio.sleep(delay)

        return StreamingResponse(rows(), media_type="application/x-ndjson")

    @router.get("/sleep")
    async def sleep(session: session_dep, seconds: Seconds = 1.0) -> float:
        await session.execute(SLEEP, {"seconds": seconds})
        return seconds

    @router.post("/write-then-raise")
    async def write_then_raise(session: session_dep, marker: Marker) -> None:
        session.add(Todo(title=marked(marker)))
        await session.flush()
        raise LabError("the handler failed after its write")

    @router.post("/failing-commit", status_code=201)
    async def failing_commit(session: session_dep, marker: Marker) -> None:
        session.add_all(duplicate(marker))
        if commit:
            await session.commit()

    @router.post("/deferred-write", status_code=201)
    async def deferred(session: session_dep, marker: Marker) -> None:
        await deferred_write(session, marker)
        if commit:
            await session.commit()

    return router
