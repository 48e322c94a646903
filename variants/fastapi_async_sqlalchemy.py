"""fastapi-async-sqlalchemy 0.7.1.post3: its middleware opens a session per request, db.session.

The library's README pattern: ``SQLAlchemyMiddleware`` opens one AsyncSession per request
and keeps it in a ContextVar that ``db.session`` reads; handlers use the global and commit
their writes (``commit_on_exit`` stays at its default, False). The middleware is a
``BaseHTTPMiddleware``: its ``dispatch`` opens the session for *every* HTTP request
(``/health`` too; no connection is checked out until first use) and closes it once
``call_next`` returns, i.e. when the response has started (headers sent, body queued):
writes are committed before the response is sent, the connection goes back to the pool
as the body is sent, and every request pays for BaseHTTPMiddleware's extra task and
body relay. A handler error rolls back in the middleware.

Same engine as every variant (``custom_engine``: pool settings, ``application_name``);
the library hard-codes ``expire_on_commit=False``, as everyone uses. The registry on PyPI
here stops at 0.7.x; later releases may differ.
"""

from fastapi_async_sqlalchemy import SQLAlchemyMiddleware, db
from starlette.middleware import Middleware

from variants.app import create_app
from variants.engine import engine, lifespan
from variants.lab import fastapi_async_sqlalchemy_lab_router
from variants.routes import global_session_router

router = global_session_router(lambda: db.session)
router.include_router(fastapi_async_sqlalchemy_lab_router(db))

app = create_app(
    router, lifespan=lifespan, middleware=[Middleware(SQLAlchemyMiddleware, custom_engine=engine)]
)
