"""Scoped behind BaseHTTPMiddleware: the ``scoped`` session, scope set by a Starlette dispatch().

Same registry, ContextVar scope and handlers as ``scoped``; only the middleware differs:
a ``BaseHTTPMiddleware`` subclass, as many tutorials write it. ``call_next`` runs the app
in a separate task and returns once the response has started, so ``remove()`` runs
before a streamed body has been sent, and every request pays for the extra task and
the body relay through a memory stream.
"""

from fastapi import FastAPI, Request, Response
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from variants.app import create_app
from variants.engine import lifespan
from variants.scoped import router, session, set_scoped_context


class SQLAlchemyMiddleware(BaseHTTPMiddleware):
    """Open a new session scope per request and remove the scope's session at its end."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        with set_scoped_context():
            try:
                return await call_next(request)
            finally:
                await session.remove()


app = create_app(router, lifespan=lifespan, middleware=[Middleware(SQLAlchemyMiddleware)])


def micro_app(name: str) -> FastAPI:
    micro = FastAPI()
    micro.add_middleware(SQLAlchemyMiddleware)

    @micro.get("/op")
    async def scoped_basehttp_touched() -> None:
        session()

    return micro
