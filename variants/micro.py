"""What the code a variant's ``Micro`` declares works with: the ``Use`` its session operation
takes, and ``dependency_app``, the machinery app of an injected session.

``bench.common.micro_ops`` times and counts what the variant modules build (``micro_session``,
``micro_app``). A session operation is written out in the variant's module, not wrapped by a
helper here: a helper's extra call would be counted as the strategy's.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

Use = Callable[[AsyncSession], Awaitable[Any]]
"""What an operation does with the session (nothing, ``SELECT 1``, a ``get``)."""


def dependency_app(session_dependency: Any) -> FastAPI:
    """An app whose ``GET /op`` takes *session_dependency* (an ``Annotated[…, Depends(…)]``)
    and does nothing with it: FastAPI solving the dependency is the operation."""
    app = FastAPI()

    async def op(session: Any) -> None:
        return None

    op.__annotations__["session"] = session_dependency  # what FastAPI reads to inject it
    app.add_api_route("/op", op, methods=["GET"])
    return app
