"""The micro-benchmarks' operations, shared by ``bench/micro`` (timed) and ``sessionbench cost``
(counted): each strategy's way to open, use and end a session, and the per-request machinery.

Session operations (``STRATEGIES`` × ``USES``): each strategy function opens, uses and ends
one session as the variant modules do it; its docstring is its label. Machinery
(``build``, ``asgi_call``): one ASGI call of a no-op endpoint of an app that adds exactly one
strategy's per-request work (``plain`` is the FastAPI floor). The variant modules read
``DATABASE_URL`` when these functions first import them.
"""

# No ``from __future__ import annotations``: FastAPI reads the machinery endpoints'
# annotations at runtime, and SessionDep is a name local to ``build``.
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool
from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelSession
from starlette.types import ASGIApp, Message

from variants.models import Todo

Use = Callable[[AsyncSession], Awaitable[Any]]


async def _nothing(session: AsyncSession) -> None:
    return None


async def _select1(session: AsyncSession) -> None:
    if isinstance(session, SQLModelSession):  # its execute() warns (deprecated) on every call
        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    else:
        await session.execute(text("SELECT 1"))


async def _get(session: AsyncSession) -> None:
    await session.get(Todo, 1)


USES: dict[str, Use] = {"lifecycle": _nothing, "select1": _select1, "get": _get}


async def scoped(use: Use) -> None:
    """scoped: set the ContextVar key, first registry access, remove()"""
    from variants.scoped import session, set_scoped_context

    with set_scoped_context():
        await use(session())
        await session.remove()


async def depends(use: Use) -> None:
    """depends: drive the yield dependency get_session (open, yield, close)"""
    from variants.depends import get_session

    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):  # the generator's close path, as FastAPI runs it
        await anext(dependency)


async def depends_commit(use: Use) -> None:
    """depends_commit: drive its yield dependency (open, yield, commit, close)"""
    from variants.depends_commit import get_session

    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):  # the commit after yield, then the close
        await anext(dependency)


async def sqlmodel(use: Use) -> None:
    """sqlmodel: drive its yield dependency (SQLModel's AsyncSession)"""
    from variants.sqlmodel import get_session

    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):
        await anext(dependency)


async def context(use: Use) -> None:
    """context: async with Session() as session"""
    from variants.engine import Session

    async with Session() as session:
        await use(session)


async def bare(use: Use) -> None:
    """bare session: Session() then close(), no strategy around it"""
    from variants.engine import Session

    session = Session()
    await use(session)
    await session.close()


STRATEGIES = [scoped, depends, depends_commit, sqlmodel, context, bare]


def checked_out() -> int:
    """Connections the shared engine's pool has lent out now."""
    from variants.engine import engine

    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def check_strategy(
    strategy: Callable[[Use], Awaitable[None]], group: str, loop: asyncio.AbstractEventLoop
) -> None:
    """What was timed did its job: the use ran on a live session, and the strategy gave the
    connection back to the pool when it ended the session."""

    seen: list[AsyncSession] = []

    async def checked(session: AsyncSession) -> None:
        await USES[group](session)
        seen.append(session)
        if group == "lifecycle":
            assert not session.in_transaction()  # no I/O: no connection taken
        else:  # the SELECT / get went to PostgreSQL on one pooled connection
            assert session.in_transaction() and checked_out() == 1

    before = checked_out()
    loop.run_until_complete(strategy(checked))
    assert len(seen) == 1 and before == checked_out() == 0
    assert not seen[0].in_transaction()  # ended: closed or rolled back


def build(name: str) -> ASGIApp:
    from variants import depends_commit, depends_commit_function, depends_function, scoped_basehttp
    from variants.depends import SessionDep
    from variants.engine import Session
    from variants.scoped import SQLAlchemyMiddleware, session

    app = FastAPI()
    if name == "plain":

        @app.get("/op")
        async def plain() -> None:
            return None

    elif name == "scoped-middleware":
        app.add_middleware(SQLAlchemyMiddleware)

        @app.get("/op")
        async def scoped_untouched() -> None:
            return None

    elif name == "scoped-session":
        app.add_middleware(SQLAlchemyMiddleware)

        @app.get("/op")
        async def scoped_touched() -> None:
            session()

    elif name == "scoped-basehttp-session":
        app.add_middleware(scoped_basehttp.SQLAlchemyMiddleware)

        @app.get("/op")
        async def scoped_basehttp_touched() -> None:
            session()

    elif name == "depends-function":

        @app.get("/op")
        async def depends_function_scope(session: depends_function.SessionDep) -> None:
            return None

    elif name == "depends":

        @app.get("/op")
        async def depends(session: SessionDep) -> None:
            return None

    elif name == "depends-commit":

        @app.get("/op")
        async def depends_commit_request(session: depends_commit.SessionDep) -> None:
            return None

    elif name == "depends-commit-function":

        @app.get("/op")
        async def depends_commit_function_scope(
            session: depends_commit_function.SessionDep,
        ) -> None:
            return None

    elif name == "context":

        @app.get("/op")
        async def context() -> None:
            async with Session():
                pass

    return app


SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/op", "raw_path": b"/op", "root_path": "", "query_string": b"",
    "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
}  # fmt: skip


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


VARIANT_OF = {
    "plain": "plain", "scoped-middleware": "scoped", "scoped-session": "scoped",
    "scoped-basehttp-session": "scoped_basehttp", "depends": "depends",
    "depends-function": "depends_function", "depends-commit": "depends_commit",
    "depends-commit-function": "depends_commit_function", "context": "context",
}  # fmt: skip
"""Each machinery's variant (``plain``: the FastAPI floor, no variant's)."""


def asgi_call(app: ASGIApp, statuses: list[int]) -> Callable[[], Awaitable[None]]:
    """The operation: one ASGI call of *app*'s ``/op``, its response status appended."""

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def op() -> None:
        await app(dict(SCOPE), _receive, send)

    return op


def label(name: str) -> str:
    return f"ASGI call of a no-op endpoint: {name}"
