"""What the lab routers share: mounting on request, ``/lab/pool``, parameters, rows and markers.

The lab is mounted only in a server started for the pitfall matrix (``sessionbench serve
VARIANT --lab`` sets ``SESSIONBENCH_LAB=1`` before the app is imported); everywhere else
each factory returns an empty router. Lab routes never appear in the OpenAPI schema.
"""

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from variants.app import lab_enabled
from variants.engine import engine
from variants.models import Todo
from variants.queries import AnySession

PREFIX = "/lab"
SECONDS_MAX = 5.0
"""Longest sleep or delay a lab endpoint accepts: long enough for every scenario, too short
to hold a pooled connection for long (the scenarios use at most 2 s)."""
BACKEND_PID = text("SELECT pg_backend_pid()")
SLEEP = text("SELECT pg_sleep(:seconds)")
DUPLICATE_ID = 1
"""A seed row's id: inserting it again fails only when the session flushes (at commit)."""
DEFERRED_TABLE = text(
    "CREATE TEMPORARY TABLE IF NOT EXISTS lab_deferred"
    " (key text CONSTRAINT lab_deferred_key UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"
)
"""The lab's own table for ``/lab/deferred-write``: temporary (this connection's only, dropped
at the end of the transaction) with a unique constraint checked only at COMMIT."""
DEFERRED_ROWS = text("INSERT INTO lab_deferred (key) VALUES (:key), (:key)")

FanOut = Annotated[int, Query(ge=1, le=8)]
Seconds = Annotated[float, Query(ge=0, le=SECONDS_MAX)]
Pages = Annotated[int, Query(ge=1, le=100)]
PageSize = Annotated[int, Query(ge=1, le=100)]
Marker = Annotated[str, Query(min_length=1, max_length=80)]


Factory = TypeVar("Factory", bound=Callable[..., APIRouter])


def on_request(factory: Factory) -> Factory:
    """Make a lab router factory return an empty router unless the lab is enabled."""

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> APIRouter:
        return factory(*args, **kwargs) if lab_enabled() else APIRouter()

    return build  # type: ignore[return-value]


def lab_router() -> APIRouter:
    """The ``/lab`` router a family's factory fills: kept out of the OpenAPI schema."""
    return APIRouter(prefix=PREFIX, include_in_schema=False)


class LabError(RuntimeError):
    """Raised on purpose by ``/lab/write-then-raise`` (mapped to 500 like any handler bug)."""


def pool_stats(of: AsyncEngine = engine) -> dict[str, int]:
    """An engine's pool (the shared one by default) as this process sees it."""
    pool: Any = of.pool
    return {
        "size": pool.size(),
        "checked_out": pool.checkedout(),
        "checked_in": pool.checkedin(),
        "overflow": pool.overflow(),
    }


def pool_router(
    registry_size: Callable[[], int | None], engine_of: Callable[[], AsyncEngine] = lambda: engine
) -> APIRouter:
    """``GET /pool`` (under the lab prefix): pool counters plus the scoped registry's size.

    *engine_of* returns the engine whose pool the variant's sessions use (a library that
    builds its own engine passes a getter for it).
    """
    router = APIRouter()

    @router.get("/pool")
    async def pool() -> dict[str, int | None]:
        return {**pool_stats(engine_of()), "registry": registry_size()}

    return router


def page(number: int, size: int) -> Select[Todo]:
    """Rows of page *number* (0-based) of the seed, for the streaming endpoint."""
    return select(Todo).order_by(Todo.id).offset(number * size).limit(size)


def line(todo: Todo) -> str:
    """One NDJSON line of a streamed row."""
    return f'{{"id": {todo.id}}}\n'


def marked(marker: str, pid: int | None = None) -> str:
    """Title of a row the lab writes: the scenario's marker, and the writer's backend pid."""
    return marker if pid is None else f"{marker}:{pid}"


def duplicate(marker: str) -> list[Todo]:
    """A new row and one whose id exists: the pair fails together when flushed."""
    return [Todo(title=marked(marker)), Todo(id=DUPLICATE_ID, title=marked(marker, 0))]


async def deferred_write(session: AnySession, marker: str) -> None:
    """Add a row titled *marker* whose transaction cannot commit: flushes fine, fails at COMMIT.

    Two equal keys in the lab's temporary table break its deferred unique constraint, which
    PostgreSQL checks only at COMMIT: whoever commits this session gets the error, and the
    row titled *marker* is rolled back with everything else. The caller commits (or its
    library does).
    """
    await session.execute(DEFERRED_TABLE)
    session.add(Todo(title=marked(marker)))
    await session.execute(DEFERRED_ROWS, {"key": marker})
    await session.flush()
