"""What every variant's app has in common: /health, error mapping and the request-body limit.

Variants pass their router (and, for ``scoped``, their middleware) to ``create_app``;
nothing here touches the database.
"""

import os
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from variants.errors import TodoNotFound

LAB_ENV = "SESSIONBENCH_LAB"
"""``1``: mount the pitfall lab's routers (set by ``sessionbench serve --lab`` only)."""
BODY_LIMIT = 64 * 1024
DRAIN_LIMIT = 4 * 1024 * 1024


class BodySizeLimit:
    """Refuse request bodies over ``BODY_LIMIT`` bytes with 413 before the app processes them."""

    def __init__(self, app: ASGIApp, limit: int = BODY_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and int(value or 0) > self.limit:
                await _drain(receive)
                await self._too_large()({"type": "http"}, _no_receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                if message.get("more_body"):
                    await _drain(receive)
                # FastAPI maps exceptions raised while reading the body to 400, except these.
                raise HTTPException(413, self._detail)
            return message

        await self.app(scope, counting_receive, send)

    @property
    def _detail(self) -> str:
        return f"request body larger than {self.limit} bytes"

    def _too_large(self) -> JSONResponse:
        return JSONResponse({"detail": self._detail}, status_code=413)


async def _drain(receive: Receive) -> None:
    """Read and drop what the client still sends (up to a cap) so it sees our 413, not a reset."""
    drained = 0
    while drained < DRAIN_LIMIT:
        message = await receive()
        drained += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _no_receive() -> Message:  # pragma: no cover - a response never reads the request
    return {"type": "http.disconnect"}


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 saying what is wrong where, without echoing the input (may be huge or unencodable)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def lab_enabled() -> bool:
    """Whether this process was started to serve the pitfall lab (``SESSIONBENCH_LAB=1``)."""
    return os.environ.get(LAB_ENV) == "1"


async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(
    router: APIRouter, *, lifespan: Any, middleware: Sequence[Middleware] = ()
) -> FastAPI:
    """Build a variant's app: its router plus everything all variants share."""
    app = FastAPI(
        lifespan=lifespan,
        # Innermost, so its 413 reaches FastAPI directly even behind a BaseHTTPMiddleware.
        middleware=[*middleware, Middleware(BodySizeLimit)],
        exception_handlers={
            TodoNotFound: _not_found,
            RequestValidationError: _invalid,
            Exception: _server_error,
        },
    )
    app.add_api_route("/health", health, methods=["GET"])
    app.include_router(router)
    return app


def location(todo_id: int) -> str:
    """The ``Location`` header of a created Todo."""
    return f"/todos/{todo_id}"
