"""fastapi-sqla 4.0.1 (own env, FastAPI 0.141): its middleware commits; handlers only flush.

The library's README pattern: ``await fastapi_sqla.startup()`` in the lifespan,
``fastapi_sqla.setup_middlewares(app)``, and handlers take ``fastapi_sqla.AsyncSession``
(an ``Annotated`` dependency reading the session from ``request.state``). Its pure ASGI
``AsyncSessionMiddleware`` opens a session for every HTTP request (``/health`` too; no
connection until first use) and, when the app sends ``http.response.start``, commits if
the status is < 400 (else rolls back) *before* passing the headers on: writes are
committed before the response is sent, and a failing commit turns into a 500. That
commit (a COMMIT for reads too) returns the connection to the pool before the headers
go out; the session itself is closed after the response. Handlers never commit
(``injected_session_router(..., commit=False)``).

Its own environment (``variants/envs/fastapi_sqla.txt``): fastapi-sqla 4.0.1 requires
``fastapi<0.142`` and ``asyncpg<0.32``, so this variant runs on FastAPI 0.141.1 and
asyncpg 0.31.0 while every other variant runs on the main pins; run.json records each
variant's versions. Compare it with the others knowing that.

Configuration is environment variables only (``sqlalchemy_url``, ``sqlalchemy_pool_size``,
…, passed to ``create_engine``), set here from the shared settings, so its engine gets
the same pool; the URL names this suite's engine plugin (``variants/pool.py``), which sets
the pool class (``--pool-queue``, pool stats) as ``variants/engine.py`` does for the
others. Environment variables cannot carry ``connect_args``: the
``application_name`` the runner finds connections by is set by a ``do_connect`` listener
on the Engine class (this process has no other engine). The library hard-codes
``expire_on_commit=False`` and never disposes its engine (connections close when the
server process exits). It runs on asyncpg only (``--driver``: its environment has no
psycopg; the registry says so).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import fastapi_sqla
from sqlalchemy import event
from sqlalchemy.engine import Engine

from variants import driver_evidence, pool
from variants.app import create_app
from variants.lab import fastapi_sqla_lab_router
from variants.routes import injected_session_router
from variants.settings import Settings

settings = Settings.from_env()
os.environ |= {
    # the plugin sets the pool class (queue, stats) by configuration: variants/pool.py
    "sqlalchemy_url": f"{settings.engine_url}{'&' if '?' in settings.url.url else '?'}"
    f"plugin={pool.PLUGIN}",
    "sqlalchemy_pool_size": str(settings.pool_size),
    "sqlalchemy_max_overflow": str(settings.max_overflow),
    "sqlalchemy_pool_timeout": f"{settings.pool_timeout:g}",  # parsed as an int
    # passed on uncoerced (any string is true): set only when on
    **({"sqlalchemy_pool_pre_ping": "1"} if settings.pool_pre_ping else {}),
}


@event.listens_for(Engine, "do_connect")
def _application_name(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
    cparams.update(settings.connect_args)  # the application name, as the driver takes it


@event.listens_for(Engine, "connect")
def _opened(dbapi_connection: Any, record: Any) -> None:
    driver_evidence.record(dbapi_connection.driver_connection)  # when the runner asks


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    await fastapi_sqla.startup()
    yield


router = injected_session_router(fastapi_sqla.AsyncSession, commit=False)
router.include_router(fastapi_sqla_lab_router())

app = create_app(router, lifespan=lifespan)
fastapi_sqla.setup_middlewares(app)
