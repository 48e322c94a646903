"""The one engine and session factory the SQLAlchemy variants share (pool settings set once).

The pool class comes from ``variants/pool.py``: the queue named by ``SESSIONBENCH_POOL_QUEUE``,
timed when ``SESSIONBENCH_POOL_STATS`` is set. The driver (asyncpg or psycopg) is the one
``SESSIONBENCH_DRIVER`` names: ``Settings.engine_url`` and ``Settings.connect_args``.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from variants import driver_evidence
from variants.pool import pool_class
from variants.settings import Settings

settings = Settings.from_env()

engine = create_async_engine(
    settings.engine_url,
    pool_size=settings.pool_size,
    max_overflow=settings.max_overflow,
    pool_timeout=settings.pool_timeout,
    pool_pre_ping=settings.pool_pre_ping,
    poolclass=pool_class(settings.pool_queue),
    connect_args=settings.connect_args,
)
driver_evidence.watch(engine)
Session = async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Close the pool's connections when the server stops."""
    yield
    await engine.dispose()
