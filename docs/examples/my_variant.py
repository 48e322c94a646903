"""Mine: a yield dependency on the app's own sessionmaker (the example of docs/extending.md).

A variant defined outside the suite: ``sessionbench verify mine --variant
docs/examples/my_variant.py`` checks it against the contract, and ``run``, ``cost``,
``pitfalls`` and ``micro`` take the same ``--variant`` flag. It serves the Todo contract
with the suite's shared routes and engine (same pool settings as every variant), and
differs from ``depends`` only in where its session factory lives.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from variants import Micro, Variant
from variants.app import create_app
from variants.engine import engine, lifespan
from variants.lab import depends_lab_router
from variants.micro import Use, dependency_app
from variants.routes import injected_session_router

# Read without running this file (its imports need DATABASE_URL): literals only.
VARIANT = Variant("mine", __name__, "strategy", micro=Micro(session=True, machinery=("mine",)))

Session = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

router = injected_session_router(SessionDep)  # the contract's routes on SessionDep
router.include_router(depends_lab_router(SessionDep))  # the pitfall lab (only with --lab)

app = create_app(router, lifespan=lifespan)  # /health, errors, body limit, OpenAPI


async def micro_session(use: Use) -> None:
    """mine: drive the yield dependency get_session (open, yield, close)"""
    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):  # the code after yield, as FastAPI runs it
        await anext(dependency)


def micro_app(name: str) -> FastAPI:
    return dependency_app(SessionDep)  # GET /op with the dependency solved, nothing else
