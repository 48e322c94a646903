"""Writes acknowledged before they commit: a 201 whose COMMIT then fails, and no row.

``python -m bench.findings.acknowledged [--writes 5]``

Each case serves one FastAPI app with uvicorn on 127.0.0.1 and POSTs writes that flush
fine but cannot commit (a deferred unique constraint, checked by PostgreSQL only at
COMMIT: it stands for any commit-time failure, a serialization failure or a lost
connection). Nothing in any handler commits; who commits differs:

- ``advanced-alchemy autocommit``: ``SQLAlchemyAsyncConfig(commit_mode="autocommit")`` and
  ``Depends(alchemy.provide_session())``, as its FastAPI docs show. Its ``SessionMiddleware``
  commits after the app call has returned, i.e. after the response was sent, and logs the
  failed commit at DEBUG.
- ``commit after yield``: a yield dependency ``async with Session() as s: yield s; await
  s.commit()``. Since FastAPI 0.118 its exit runs after the response was sent.
- ``commit after yield, scope="function"``: the same dependency under ``Depends(...,
  scope="function")`` (FastAPI ≥ 0.121): its exit runs before the response, so the failed
  commit becomes a 500.

It prints per case the statuses the client received, the rows that exist afterwards and
the commit errors the server saw after it had answered.
"""

# No `from __future__ import annotations`: FastAPI must see the local Depends aliases.

import argparse
import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bench.findings.support import database, fetchval, notes, served
from variants.settings import DatabaseUrl

DOOMED = [
    "CREATE TEMPORARY TABLE IF NOT EXISTS doomed (key text CONSTRAINT doomed_key UNIQUE"
    " DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP",
    "INSERT INTO doomed (key) VALUES ('x'), ('x')",
]
"""Two equal keys under a deferred unique constraint: the transaction fails at COMMIT."""


async def doomed_write(session: AsyncSession, title: str) -> int:
    """Insert a note (flushed: it has an id) in a transaction that cannot commit."""
    await session.execute(text(DOOMED[0]))
    new_id: int = (
        await session.execute(insert(notes).values(title=title).returning(notes.c.id))
    ).scalar_one()
    await session.execute(text(DOOMED[1]))
    return new_id


class Count(logging.Handler):
    """Counts the records of one logger whose message contains *words*."""

    def __init__(self, words: str) -> None:
        super().__init__(logging.DEBUG)
        self.words = words
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seen += self.words in record.getMessage()


@dataclass
class Case:
    name: str
    build: Callable[[AsyncEngine], FastAPI]
    logger: str  # where the server reports the failed commit
    words: str


def _lifespan(engine: AsyncEngine) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    return lifespan


def advanced_alchemy_app(engine: AsyncEngine) -> FastAPI:
    from advanced_alchemy.extensions.fastapi import (
        AdvancedAlchemy,
        AsyncSessionConfig,
        SQLAlchemyAsyncConfig,
    )

    app = FastAPI(lifespan=_lifespan(engine))
    config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        commit_mode="autocommit",
    )
    alchemy = AdvancedAlchemy(config=config, app=app)
    session_dep = Annotated[AsyncSession, Depends(alchemy.provide_session())]

    @app.post("/notes", status_code=201)
    async def create(session: session_dep, title: str) -> dict[str, int]:
        return {"id": await doomed_write(session, title)}

    return app


def commit_after_yield_app(scope: str) -> Callable[[AsyncEngine], FastAPI]:
    def build(engine: AsyncEngine) -> FastAPI:
        app = FastAPI(lifespan=_lifespan(engine))
        session_factory = async_sessionmaker(engine, expire_on_commit=False)

        async def get_session() -> AsyncIterator[AsyncSession]:
            async with session_factory() as session:
                yield session
                await session.commit()

        session_dep = Annotated[AsyncSession, Depends(get_session, scope=scope)]

        @app.post("/notes", status_code=201)
        async def create(session: session_dep, title: str) -> dict[str, int]:
            return {"id": await doomed_write(session, title)}

        return app

    return build


CASES = [
    Case("advanced-alchemy autocommit", advanced_alchemy_app,
         "advanced_alchemy.extensions.starlette", "commit/rollback failed"),
    Case("commit after yield (request)", commit_after_yield_app("request"),
         "uvicorn.error", "Exception in ASGI application"),
    Case('commit after yield, scope="function"', commit_after_yield_app("function"),
         "uvicorn.error", "Exception in ASGI application"),
]  # fmt: skip


@dataclass
class Outcome:
    case: str
    statuses: Counter[int]
    rows: int
    errors_after_response: int

    @property
    def acknowledged_not_committed(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300) - self.rows

    def line(self) -> str:
        statuses = ", ".join(f"{n}× {status}" for status, n in sorted(self.statuses.items()))
        return (
            f"{self.case:38} client got {statuses:8}  rows written {self.rows}  "
            f"acknowledged but not committed {self.acknowledged_not_committed}  "
            f"commit errors logged by the server {self.errors_after_response}"
        )


def run_case(case: Case, url: DatabaseUrl, writes: int) -> Outcome:
    engine = create_async_engine(url.sqlalchemy, pool_size=2, max_overflow=0)
    marker = f"ack-{case.name}"
    counter = Count(case.words)
    logger = logging.getLogger(case.logger)
    logger.addHandler(counter)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    statuses: Counter[int] = Counter()
    try:
        with served(case.build(engine)) as base:
            for _ in range(writes):
                # A fresh connection per write: the server may close one after an error.
                with httpx.Client(base_url=base, timeout=10) as client:
                    statuses[client.post("/notes", params={"title": marker}).status_code] += 1
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
    rows = asyncio.run(fetchval(url, "SELECT count(*) FROM finding_notes WHERE title = $1", marker))
    return Outcome(case.name, statuses, rows, counter.seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.findings.acknowledged", description=__doc__
    )
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 writes per case")
    args = parser.parse_args(argv)
    logging.getLogger("uvicorn.error").propagate = False  # the counts say it; no tracebacks
    with database() as url:
        for case in CASES:
            print(run_case(case, url, 2 if args.quick else args.writes).line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
