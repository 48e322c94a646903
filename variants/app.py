"""What every variant's app has in common: /health, error mapping, the request-body limit,
and an OpenAPI schema that documents every status the contract's routes answer.

Variants pass their router (and, for ``scoped``, their middleware) to ``create_app``;
nothing here touches the database.
"""

import os
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

try:  # included routers stay nested since FastAPI 0.16x; this walks them flat
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI (`sessionbench history`) copies included routes flat
    iter_route_contexts = iter  # type: ignore[assignment]
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from variants.errors import TodoNotFound
from variants.schemas import (
    CONTRACT_ERRORS,
    ERROR_MEANINGS,
    ErrorBody,
    ValidationErrorBody,
)

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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own HTTP errors, with two corrections.

    * 400 is what FastAPI answers for a body it cannot decode (bytes that are not UTF-8);
      the contract says a body that is not JSON is 422, like any other malformed JSON.
    * 405 carries every method the path serves in ``Allow`` (Starlette names only the
      methods of the first route whose path matched).
    """
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        issue = {"loc": ["body"], "msg": "body is not valid JSON", "type": "json_invalid"}
        return JSONResponse({"detail": [issue]}, status_code=422)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (included routers flattened)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return sorted(methods)


POOL_TIMEOUT_DETAIL = "pool timeout"


async def _pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """SQLAlchemy's pool found no free connection within ``pool_timeout``: overload, not a
    fault. 503 with its own detail, so a load generator counts it as a timeout."""
    return JSONResponse({"detail": POOL_TIMEOUT_DETAIL}, status_code=503)


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
            StarletteHTTPException: _http_error,
            PoolTimeout: _pool_timeout,
            Exception: _server_error,
        },
    )
    app.add_api_route("/health", health, methods=["GET"])
    app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus every error status of ``CONTRACT_ERRORS`` with its body."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorBody, ValidationErrorBody):
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        for (method, path), statuses in CONTRACT_ERRORS.items():
            operation = schema["paths"][path][method.lower()]
            for status in statuses:
                body = ValidationErrorBody if status == 422 else ErrorBody
                ref = {"$ref": f"#/components/schemas/{body.__name__}"}
                operation["responses"][str(status)] = {
                    "description": ERROR_MEANINGS[status],
                    "content": {"application/json": {"schema": ref}},
                }
            operation["responses"] = dict(sorted(operation["responses"].items()))
        created = schema["paths"]["/todos"]["post"]["responses"]["201"]
        created["headers"] = {
            "Location": {"description": "/todos/{id}", "schema": {"type": "string"}}
        }
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema


def location(todo_id: int) -> str:
    """The ``Location`` header of a created Todo."""
    return f"/todos/{todo_id}"
