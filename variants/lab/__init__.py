"""Lab routers: the pitfall scenarios' endpoints under ``/lab``, one module per strategy family.

Each family writes its endpoints the way a user of that strategy naturally would (the
scoped family uses the global session everywhere, depends uses its ``SessionDep``,
context opens its own sessions), so ``sessionbench pitfalls`` measures the strategy,
not a defensive rewrite of it. These routes are never part of the Todo contract or of
the throughput scenarios. Every variant of a family mounts its family's factory with
one line; the factories take the same argument as the family's main route factory. The
library variants mount theirs the same way (``variants.lab.libraries``).
They return an empty router unless the server was started with ``--lab`` (see
``variants.app.lab_enabled``), and their routes are never in the OpenAPI schema.
"""

from variants.lab.context import context_lab_router
from variants.lab.depends import depends_lab_router
from variants.lab.libraries import (
    advanced_alchemy_lab_router,
    fastapi_async_sqlalchemy_lab_router,
    fastapi_sqla_lab_router,
)
from variants.lab.scoped import scoped_lab_router

__all__ = [
    "advanced_alchemy_lab_router",
    "context_lab_router",
    "depends_lab_router",
    "fastapi_async_sqlalchemy_lab_router",
    "fastapi_sqla_lab_router",
    "scoped_lab_router",
]
