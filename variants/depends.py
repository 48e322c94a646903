"""Depends: a yield dependency gives each request its own AsyncSession (``SessionDep``).

The FastAPI-documented pattern (full-stack-fastapi-template): the dependency opens the
session, handlers commit their writes, and the dependency's exit closes the session
(rolling back anything uncommitted) after the handler returns.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from variants.app import create_app
from variants.engine import Session, lifespan
from variants.lab import depends_lab_router
from variants.micro import Use, dependency_app
from variants.routes import injected_session_router


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

router = injected_session_router(SessionDep)
router.include_router(depends_lab_router(SessionDep))

app = create_app(router, lifespan=lifespan)


async def micro_session(use: Use) -> None:
    """depends: drive the yield dependency get_session (open, yield, close)"""
    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):  # the generator's close path, as FastAPI runs it
        await anext(dependency)


def micro_app(name: str) -> FastAPI:
    return dependency_app(SessionDep)
