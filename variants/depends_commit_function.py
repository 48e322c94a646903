"""Depends, commit after yield, function scope: ``Depends(get_session, scope="function")``.

The ``depends_commit`` dependency with FastAPI's ``scope="function"`` (FastAPI ≥ 0.121,
#14262): the code after ``yield`` (the commit) runs when the handler returns, before the
response is sent, so a failing COMMIT becomes the request's error. Everything else is
``depends_commit``.
"""

from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from variants.app import create_app
from variants.depends_commit import get_session
from variants.engine import lifespan
from variants.lab import depends_lab_router
from variants.micro import dependency_app
from variants.routes import injected_session_router

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

router = injected_session_router(SessionDep, commit=False)
router.include_router(depends_lab_router(SessionDep, commit=False))

app = create_app(router, lifespan=lifespan)


def micro_app(name: str) -> FastAPI:
    return dependency_app(SessionDep)
