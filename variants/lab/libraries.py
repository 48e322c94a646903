"""Lab routes of the library variants: each library's session used the way its docs show.

The libraries fall into the families above, so their labs are those families' routers fed
with the library's own session:

* fastapi-async-sqlalchemy: the ``db.session`` global everywhere (the scoped family's
  router with ``lambda: db.session``); handlers commit, as its README shows with
  ``commit_on_exit`` left at False. Fan-out follows its README's "concurrent queries"
  example instead: ``async with db(multi_sessions=True)``, where every ``db.session``
  access in a task opens a session of its own, closed when that task ends.
* advanced-alchemy: ``Depends(alchemy.provide_session())`` everywhere, through a second
  config with ``commit_mode="autocommit"``, the mode its FastAPI page shows: handlers
  never commit, the middleware commits after the response was sent.
* fastapi-sqla: ``fastapi_sqla.AsyncSession`` everywhere; handlers never commit, its
  middleware commits when the response starts.

The library imports stay inside the factories: fastapi-sqla runs from its own environment,
where advanced-alchemy is not installed (and the other way round).
"""

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from variants.engine import engine
from variants.lab.common import PREFIX, FanOut, on_request
from variants.lab.depends import depends_lab_router
from variants.lab.scoped import scoped_lab_router
from variants.models import Todo

if TYPE_CHECKING:
    from advanced_alchemy.extensions.fastapi import AdvancedAlchemy


@on_request
def fastapi_async_sqlalchemy_lab_router(db: Any) -> APIRouter:
    """The ``/lab`` routes on *db* (the library's ``db`` proxy); fan-out with multi_sessions."""
    router = APIRouter(include_in_schema=False)

    @router.get(f"{PREFIX}/fanout")  # first match: replaces the scoped family's fan-out
    async def fanout(n: FanOut = 2) -> list[int]:
        async def load(todo_id: int) -> int | None:
            todo = await db.session.get(Todo, todo_id)
            return todo.id if todo else None

        async with db(multi_sessions=True):
            found = await asyncio.gather(*(load(i) for i in range(1, n + 1)))
        return [i for i in found if i is not None]

    router.include_router(scoped_lab_router(lambda: db.session))
    return router


LAB_BIND_KEY = "lab"
"""advanced-alchemy: bind key of the lab's autocommit config (the variant's own is "default")."""


@on_request
def advanced_alchemy_lab_router(alchemy: "AdvancedAlchemy") -> APIRouter:
    """The ``/lab`` routes on an autocommit session of *alchemy* (call before ``init_app``).

    The variant itself runs ``commit_mode="manual"``; the lab adds a config of its own with
    the documented ``commit_mode="autocommit"`` on the same engine (a bind key and session
    key of its own), so ``alchemy.init_app`` installs its middleware too. Only lab routes
    use it.
    """
    from advanced_alchemy.extensions.fastapi import AsyncSessionConfig, SQLAlchemyAsyncConfig

    config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        commit_mode="autocommit",
        bind_key=LAB_BIND_KEY,
        session_key="lab_db_session",
    )
    # AdvancedAlchemy keeps its configs in a list and a bind-key map; init_app reads both.
    cast(list[Any], alchemy.config).append(config)
    alchemy._mapped_configs = alchemy.map_configs()
    session = Annotated[AsyncSession, Depends(alchemy.provide_session(LAB_BIND_KEY))]
    return depends_lab_router(session, commit=False)


def _fastapi_sqla_engine() -> AsyncEngine:
    from fastapi_sqla.async_sqla import _async_session_factories
    from fastapi_sqla.sqla import _DEFAULT_SESSION_KEY

    bound: AsyncEngine = _async_session_factories[_DEFAULT_SESSION_KEY].kw["bind"]
    return bound


@on_request
def fastapi_sqla_lab_router() -> APIRouter:
    """The ``/lab`` routes on ``fastapi_sqla.AsyncSession``; handlers never commit."""
    import fastapi_sqla

    session = fastapi_sqla.AsyncSession
    return depends_lab_router(session, commit=False, engine_of=_fastapi_sqla_engine)
