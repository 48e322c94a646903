"""advanced-alchemy 1.12.0 (FastAPI): AdvancedAlchemy middleware, provide_session() dependency.

The library's documented setup: ``AdvancedAlchemy(config=SQLAlchemyAsyncConfig(...))`` on
the app installs a pure ASGI ``SessionMiddleware`` and wraps the app's lifespan (the
engine is disposed at shutdown); handlers take
``Annotated[AsyncSession, Depends(alchemy.provide_session())]``, which creates the
session on first use and keeps it on ``request.state``.

Committing: ``commit_mode="manual"`` (the library's default), handlers commit their
writes. The FastAPI page of its docs shows ``commit_mode="autocommit"`` instead, but then
the middleware commits in a ``finally`` after the whole app call has returned, i.e. after
the last byte of the response was sent: the client holds a 2xx for a write that is not
committed yet (a failing commit is only logged at debug level, and a read right after
may miss the write: 2 of 300 POST-then-GET pairs on two connections did, tried here),
which breaks the contract's "a 2xx write is committed before the response is sent".
In both modes the middleware ends the session (rollback, then close) only after the
response has been sent: a write's connection goes back to the pool at its commit, a
read's is held through the sending of the response, as in ``scoped``.

Same engine as every variant (``engine_instance``: pool settings, ``application_name``);
``AsyncSessionConfig(expire_on_commit=False)`` as the docs show. The config's session
factory adds the library's session listeners (file objects, ``updated_at`` touch, cache
invalidation) to every flush, commit and rollback: part of its cost. Under ``serve --lab``
the pitfall lab adds a second config, ``commit_mode="autocommit"`` on the same engine, for
its own routes only (``variants/lab/libraries.py``): the documented mode is the one the
pitfall matrix shows.
"""

from typing import Annotated

from advanced_alchemy.extensions.fastapi import (
    AdvancedAlchemy,
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
)
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from variants.app import create_app
from variants.engine import engine, lifespan
from variants.lab import advanced_alchemy_lab_router
from variants.routes import injected_session_router

config = SQLAlchemyAsyncConfig(
    engine_instance=engine,
    session_config=AsyncSessionConfig(expire_on_commit=False),
    commit_mode="manual",
)
alchemy = AdvancedAlchemy(config=config)

DatabaseSession = Annotated[AsyncSession, Depends(alchemy.provide_session())]

router = injected_session_router(DatabaseSession)
router.include_router(advanced_alchemy_lab_router(alchemy))

app = create_app(router, lifespan=lifespan)
alchemy.init_app(app)
