"""SQLModel: FastAPI's SQL tutorial, SQLModel's table model and AsyncSession in a SessionDep.

As SQLModel's docs show it: a yield dependency opens ``sqlmodel.ext.asyncio.session.AsyncSession``
on the shared engine (``variants/engine.py``: same pool, queue and ``application_name``),
handlers commit their writes, the dependency's exit closes the session. The table model and
the few queries SQLModel writes its own way live in ``variants/sqlmodel_queries.py``; the
responses use the shared schemas, so the contract is unchanged.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from variants import sqlmodel_queries
from variants.app import create_app
from variants.engine import engine, lifespan
from variants.lab import depends_lab_router
from variants.micro import Use
from variants.routes import injected_session_router

Session = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

router = injected_session_router(SessionDep, queries=sqlmodel_queries)
router.include_router(depends_lab_router(SessionDep))

app = create_app(router, lifespan=lifespan)


async def micro_session(use: Use) -> None:
    """sqlmodel: drive its yield dependency (SQLModel's AsyncSession)"""
    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):  # the generator's close path
        await anext(dependency)
