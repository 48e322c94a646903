"""The per-request machinery alone: one ASGI call of a no-op endpoint, no database I/O.

``plain`` is the FastAPI floor; the others add exactly one strategy's per-request
work (the scoped middleware, with and without the lazy session being created, and as a
BaseHTTPMiddleware; the yield dependency solved by FastAPI, in request and function
scope; an ``async with`` session in the handler).
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message


def build(name: str) -> ASGIApp:
    from variants import depends_function, scoped_basehttp
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
    "depends-function": "depends_function", "context": "context",
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


@pytest.mark.parametrize("name", list(VARIANT_OF))
def test_machinery(name: str, measure, benchmark) -> None:
    benchmark.group = "machinery"
    benchmark.extra_info["label"] = label(name)
    statuses: list[int] = []
    measure(asgi_call(build(name), statuses), batch=1000)
    assert set(statuses) == {200}
