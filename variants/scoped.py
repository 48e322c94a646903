"""Scoped global: async_scoped_session keyed by a ContextVar that a pure ASGI middleware sets.

Faithful to the seed project (hyzyla/fastapi-async-sqlalchemy-orm): a module-level
``session`` registry whose scopefunc reads a ContextVar holding a fresh uuid4 per
request; the session is created lazily on first use; the middleware wraps every
ASGI call (lifespan included) and calls ``remove()`` in ``finally``. Handlers commit
themselves; nothing rolls back explicitly (``remove()`` closes, which rolls back).

Known weaknesses, kept on purpose because the suite measures them:

* every coroutine of one request shares one AsyncSession, so concurrent use inside a
  request (``asyncio.gather``, TaskGroup) raises ``IllegalStateChangeError``; when it
  hits ``remove()`` the session stays in the registry and its connection is never
  returned to the pool;
* the session lives as long as the whole ASGI call: through response sending,
  streaming bodies and background tasks, so the connection is held longer;
* use outside a request (startup, a task spawned elsewhere) raises ``LookupError``;
* a uuid4 and a dict entry per request, even for requests that never touch the database.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_scoped_session
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from variants.app import create_app
from variants.engine import Session, lifespan
from variants.lab import scoped_lab_router
from variants.micro import Use
from variants.routes import global_session_router

_session_context: ContextVar[str] = ContextVar("session_context")


@contextmanager
def set_scoped_context() -> Iterator[None]:
    token = _session_context.set(str(uuid.uuid4()))
    try:
        yield
    finally:
        _session_context.reset(token)


def get_session_context() -> str:
    return _session_context.get()


session = async_scoped_session(Session, scopefunc=get_session_context)


class SQLAlchemyMiddleware:
    """Open a new session scope per ASGI call and remove the scope's session at its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with set_scoped_context():
            try:
                await self.app(scope, receive, send)
            finally:
                await session.remove()


router = global_session_router(lambda: session)
router.include_router(scoped_lab_router(lambda: session))

app = create_app(router, lifespan=lifespan, middleware=[Middleware(SQLAlchemyMiddleware)])


async def micro_session(use: Use) -> None:
    """scoped: set the ContextVar key, first registry access, remove()"""
    with set_scoped_context():
        await use(session())
        await session.remove()


def micro_app(name: str) -> FastAPI:
    """``scoped-middleware``: the middleware, the session untouched; ``scoped-session``: the
    middleware and the lazy session created."""
    micro = FastAPI()
    micro.add_middleware(SQLAlchemyMiddleware)

    async def scoped_untouched() -> None:
        return None

    async def scoped_touched() -> None:
        session()

    touched = name == "scoped-session"
    micro.add_api_route("/op", scoped_touched if touched else scoped_untouched, methods=["GET"])
    return micro
