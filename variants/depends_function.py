"""Depends, function scope: ``Depends(get_session, scope="function")`` closes before the response.

The ``depends`` dependency with FastAPI's ``scope="function"`` (FastAPI ≥ 0.121): the code
after ``yield`` runs when the handler returns, before the response is serialised and
sent, so the connection goes back to the pool earlier than with the default
``"request"`` scope. Everything else is ``depends``.
"""

from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from variants.app import create_app
from variants.depends import get_session
from variants.engine import lifespan
from variants.lab import depends_lab_router
from variants.micro import dependency_app
from variants.routes import injected_session_router

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

router = injected_session_router(SessionDep)
router.include_router(depends_lab_router(SessionDep))

app = create_app(router, lifespan=lifespan)


def micro_app(name: str) -> FastAPI:
    return dependency_app(SessionDep)
