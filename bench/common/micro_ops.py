"""The micro-benchmarks' operations, shared by ``bench/micro`` (timed) and ``sessionbench cost``
(counted): each strategy's way to open, use and end a session, and the per-request machinery.

Each variant declares its operations (``Variant.micro``, ``variants.declaration.Micro``) and
its module holds their code. Session operations (``session_names()`` × ``USES``): a variant's
``micro_session`` opens, uses and ends one session as its requests do; its docstring is its
label (``bare``: the floor, no strategy). Machinery (``machinery()``, ``build``,
``asgi_call``): one ASGI call of a no-op endpoint of an app that adds exactly one strategy's
per-request work (``plain`` is the FastAPI floor). The variant modules read ``DATABASE_URL``
when these functions first import them; the names and labels are read without importing.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at runtime.
import asyncio
import importlib
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool
from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelSession
from starlette.types import ASGIApp, Message

import variants
from variants.declaration import MACHINERY_APP, SESSION_OPERATION
from variants.micro import Use
from variants.models import Todo

Strategy = Callable[[Use], Awaitable[None]]


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


BARE = "bare session: Session() then close(), no strategy around it"


def _bare() -> Strategy:
    """The session floor, built on first use (``variants.engine`` needs ``DATABASE_URL``); like
    the variants' ``micro_session``, it looks nothing up per call but its globals."""
    from variants.engine import Session

    async def bare(use: Use) -> None:
        session = Session()
        await use(session)
        await session.close()

    bare.__doc__ = BARE
    return bare


FLOORS = {"session": "bare", "machinery": "plain"}
"""The floor of each kind of operation (no strategy around the session / no session at all)."""


def session_names() -> list[str]:
    """The variants with a session operation (``Micro.session``), in registry order, then the
    floor (``bare``)."""
    return [n for n, v in variants.VARIANTS.items() if v.micro.session] + [FLOORS["session"]]


def strategy(name: str) -> Strategy:
    """The session operation of variant *name* (its module's ``micro_session``) or ``bare``.
    Imports the variant's module: ``DATABASE_URL`` must be set."""
    if name == FLOORS["session"]:
        return _bare()
    found: Strategy = getattr(_module(name), SESSION_OPERATION)
    return found


def strategy_label(name: str) -> str:
    """The label of *name*'s session operation (its docstring), read without importing it."""
    if name == FLOORS["session"]:
        return BARE
    return variants.get(name).doc_of(SESSION_OPERATION) or f"{name}: its {SESSION_OPERATION}"


def machinery() -> dict[str, str]:
    """Every machinery operation → its variant (``plain``: the FastAPI floor, no variant's)."""
    floor = FLOORS["machinery"]
    declared = {op: n for n, v in variants.VARIANTS.items() for op in v.micro.machinery}
    return {floor: floor} | declared


def _module(name: str) -> ModuleType:
    return importlib.import_module(variants.get(name).module)


def checked_out() -> int:
    """Connections the shared engine's pool has lent out now."""
    from variants.engine import engine

    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def check_strategy(strategy: Strategy, group: str, loop: asyncio.AbstractEventLoop) -> None:
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
    """The app of machinery operation *name* (its variant's ``micro_app``, or ``plain``)."""
    variant = machinery()[name]
    if variant == FLOORS["machinery"]:
        app = FastAPI()

        @app.get("/op")
        async def plain() -> None:
            return None

        return app
    built: ASGIApp = getattr(_module(variant), MACHINERY_APP)(name)
    return built


SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/op", "raw_path": b"/op", "root_path": "", "query_string": b"",
    "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
}  # fmt: skip


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


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
