"""Deliberately broken apps for the load runner's tests (never registered as variants).

``app`` acknowledges every PATCH with 200 and the updated todo, then rolls it back: a
lost update that statement counts cannot see (the UPDATE was sent). ``flaky_start_app``
is ``context`` answering 503 to its first requests: failures in the warm-up only.
``stall_once_app`` is ``context`` whose first request (of the server's whole life, across
restarts: a marker file, ``STALL_MARKER``) also opens a connection, locks ``todos`` and
leaves that transaction idle: what a stalled server does to the cells after it.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.types import Receive, Scope, Send

from variants.app import create_app
from variants.context import app as context_app
from variants.engine import Session, engine, lifespan
from variants.routes import injected_session_router

FLAKY_REQUESTS = 30


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session
        if request.method == "PATCH":
            await session.rollback()  # after the handler built its 200 response
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = create_app(injected_session_router(SessionDep, commit=False), lifespan=lifespan)

_served = {"n": 0}


async def flaky_start_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] != "/health" and _served["n"] < FLAKY_REQUESTS:
        _served["n"] += 1
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await context_app(scope, receive, send)


_stalled: list[AsyncConnection] = []


def _first_of_all_lives() -> bool:
    """True once per marker file: for the first request of the first server's life."""
    marker = Path(os.environ["STALL_MARKER"])
    if marker.exists():
        return False
    marker.touch()
    return True


async def stall_once_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] != "/health" and _first_of_all_lives():
        conn = await engine.connect()  # held forever: idle in transaction, todos locked
        await conn.execute(text("LOCK TABLE todos IN ROW EXCLUSIVE MODE"))
        _stalled.append(conn)
    await context_app(scope, receive, send)
