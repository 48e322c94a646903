"""Scoped per task: async_scoped_session(scopefunc=asyncio.current_task), removed per request.

The example in SQLAlchemy's asyncio documentation: the registry is keyed by the running
asyncio task, and a pure ASGI middleware calls ``remove()`` when the request's ASGI call
ends (uvicorn runs each request's ASGI call in one task). Handlers commit themselves.

Known weaknesses, kept on purpose because the suite measures them:

* every task gets its own session: a task started inside a request (``asyncio.gather``,
  TaskGroup, ``create_task``) silently opens a second session that nothing removes, so
  its connection and registry entry live until the task object is garbage-collected;
* like ``scoped``, the session lives through response sending and background tasks.
"""

import asyncio

from sqlalchemy.ext.asyncio import async_scoped_session
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from variants.app import create_app
from variants.engine import Session, lifespan
from variants.lab import scoped_lab_router
from variants.routes import global_session_router

session = async_scoped_session(Session, scopefunc=asyncio.current_task)


class RemoveSessionMiddleware:
    """Remove the current task's session when the ASGI call ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            await session.remove()


router = global_session_router(lambda: session)
router.include_router(scoped_lab_router(lambda: session))

app = create_app(router, lifespan=lifespan, middleware=[Middleware(RemoveSessionMiddleware)])
