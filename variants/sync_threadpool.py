"""Sync threadpool: a sync ``Session`` over psycopg in plain ``def`` handlers (``SessionDep``).

What many FastAPI apps run: ``create_engine`` (psycopg 3, SQLAlchemy's ``QueuePool``), a
sync yield dependency and ``def`` endpoints. FastAPI runs every ``def`` endpoint in anyio's
worker threadpool (``run_in_threadpool``), bounded by anyio's default thread limiter: 40
tokens unless changed, so at most 40 handlers run at once per process. A sync yield
dependency's setup and teardown run there too (``contextmanager_in_threadpool``), and so does
the response validation/serialisation of a ``def`` endpoint (``serialize_response`` →
``run_in_threadpool``). The pool has the same size, overflow, timeout and
``application_name`` as the async engine (``variants/settings.py``); the runner records the
thread limit as ``threadpool_tokens`` next to the pool size in run.json. The FIFO and hybrid
pool queues of ``variants/pool.py`` are asyncio queues: ``SESSIONBENCH_POOL_QUEUE`` other than
``sqlalchemy`` is refused at import (and ``sessionbench run --pool-queue`` refuses it).

Stall when users outnumber the threads and the threads the connections (read scenario,
128 users, pool 10, 40 threads). A read leaves its session in a transaction holding a
checked-out connection after the handler returns; the connection goes back only in the
dependency's teardown, after ``serialize_response`` has run in the threadpool. Once the 40
tokens are all taken by handlers blocked in ``QueuePool._do_get`` (waiting for a
connection), the 10 handlers that hold the connections cannot get a thread to serialise
their response, so nothing progresses until the pool timeout (30 s) fails the waiters.
Observed with ``sessionbench run --variants sync_threadpool --scenarios read --users 128
--trials 1 --duration 5``: 59 requests in the warm-up, then 0 in the 5-s window (128
in flight, the oldest 6.0 s), 10 connections ``idle in transaction`` in pg_stat_activity
aging through the window, 48 of the server's 49 threads in ``futex_do_wait``; the cell
is invalid (no requests in the window; no_idle_in_transaction fails). Writes do not stall
(commit returns the connection before the response is serialised): the same command with
``--scenarios write`` completed 407 requests in the window with every integrity check
passing. This is the code people write, so it is left as it is; the runner reports it.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from variants import driver_evidence
from variants import sync_queries as queries
from variants.app import create_app, location
from variants.models import Todo
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
from variants.settings import PSYCOPG_PREPARE_THRESHOLD, Settings

settings = Settings.from_env()
if settings.pool_queue != "sqlalchemy":
    raise RuntimeError(
        f"sync_threadpool: SESSIONBENCH_POOL_QUEUE={settings.pool_queue!r} is an asyncio "
        "queue (variants/pool.py); a sync engine has SQLAlchemy's QueuePool only: use sqlalchemy"
    )
engine = create_engine(
    settings.url.psycopg,
    pool_size=settings.pool_size,
    max_overflow=settings.max_overflow,
    pool_timeout=settings.pool_timeout,
    connect_args={
        "application_name": settings.app_name,
        "prepare_threshold": PSYCOPG_PREPARE_THRESHOLD,
    },
)
driver_evidence.watch(engine)
SessionLocal = sessionmaker(engine, expire_on_commit=False)


def get_session() -> Iterator[Session]:
    with SessionLocal() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

router = APIRouter()


@router.post("/todos", status_code=201, response_model=TodoOut)
def create_todo(data: TodoCreate, response: Response, session: SessionDep) -> Todo:
    todo = queries.create_todo(session, data=data)
    session.commit()
    response.headers["Location"] = location(todo.id)
    return todo


@router.get("/todos", response_model=list[TodoOut])
def list_todos(session: SessionDep, limit: Limit = 20, offset: Offset = 0) -> list[Todo]:
    return list(queries.list_todos(session, limit=limit, offset=offset))


@router.get("/todos/{todo_id}", response_model=TodoOut)
def get_todo(todo_id: TodoId, session: SessionDep) -> Todo:
    return queries.get_todo(session, todo_id=todo_id)


@router.patch("/todos/{todo_id}", response_model=TodoOut)
def update_todo(todo_id: TodoId, data: TodoUpdate, session: SessionDep) -> Todo:
    todo = queries.update_todo(session, todo_id=todo_id, data=data)
    session.commit()
    return todo


@router.delete("/todos/{todo_id}", status_code=204)
def delete_todo(todo_id: TodoId, session: SessionDep) -> None:
    queries.delete_todo(session, todo_id=todo_id)
    session.commit()


@router.get("/todos/{todo_id}/multi", response_model=list[TodoOut])
def multi_todos(todo_id: TodoId, session: SessionDep, count: QueryCount = None) -> list[Todo]:
    return queries.multi_todos(session, ids=multi_ids(todo_id, count))


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Close the pool's connections when the server stops."""
    yield
    engine.dispose()


app = create_app(router, lifespan=lifespan)
