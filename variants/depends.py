"""Depends: a yield dependency gives each request its own AsyncSession (``SessionDep``).

The FastAPI-documented pattern (full-stack-fastapi-template): the dependency opens the
session, handlers commit their writes, and the dependency's exit closes the session
(rolling back anything uncommitted) after the handler returns.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from variants.app import create_app
from variants.engine import Session, lifespan
from variants.lab import depends_lab_router
from variants.routes import injected_session_router


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

router = injected_session_router(SessionDep)
router.include_router(depends_lab_router(SessionDep))

app = create_app(router, lifespan=lifespan)
