"""What the lab routers share: the ``/lab/pool`` endpoint, parameters, rows and markers."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import Select, select, text

from variants.engine import engine
from variants.models import Todo

PREFIX = "/lab"
BACKEND_PID = text("SELECT pg_backend_pid()")
SLEEP = text("SELECT pg_sleep(:seconds)")
DUPLICATE_ID = 1
"""A seed row's id: inserting it again fails only when the session flushes (at commit)."""

FanOut = Annotated[int, Query(ge=1, le=8)]
Seconds = Annotated[float, Query(ge=0, le=30)]
Pages = Annotated[int, Query(ge=1, le=100)]
PageSize = Annotated[int, Query(ge=1, le=100)]
Marker = Annotated[str, Query(min_length=1, max_length=80)]


class LabError(RuntimeError):
    """Raised on purpose by ``/lab/write-then-raise`` (mapped to 500 like any handler bug)."""


def pool_stats() -> dict[str, int]:
    """The shared engine's pool as this process sees it."""
    pool: Any = engine.pool
    return {
        "size": pool.size(),
        "checked_out": pool.checkedout(),
        "checked_in": pool.checkedin(),
        "overflow": pool.overflow(),
    }


def pool_router(registry_size: Callable[[], int | None]) -> APIRouter:
    """``GET /pool`` (under the lab prefix): pool counters plus the scoped registry's size."""
    router = APIRouter()

    @router.get("/pool")
    async def pool() -> dict[str, int | None]:
        return {**pool_stats(), "registry": registry_size()}

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
