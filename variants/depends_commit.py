"""Depends, commit after yield: the yield dependency commits the request's writes; handlers don't.

A pattern many apps write: the dependency opens the session, yields it, commits after
the ``yield`` and rolls back when the request raised; handlers only flush. With
FastAPI's default ``"request"`` scope the code after ``yield`` runs after the response
has been sent (FastAPI ≥ 0.118, #14099): the client has its 2xx before the COMMIT runs.
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
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session)]

router = injected_session_router(SessionDep, commit=False)
router.include_router(depends_lab_router(SessionDep, commit=False))

app = create_app(router, lifespan=lifespan)


async def micro_session(use: Use) -> None:
    """depends_commit: drive its yield dependency (open, yield, commit, close)"""
    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):  # the commit after yield, then the close
        await anext(dependency)


def micro_app(name: str) -> FastAPI:
    return dependency_app(SessionDep)
