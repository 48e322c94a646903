"""The sync threadpool deadlock: ``def`` endpoints, a sync Session, more users than threads.

``python -m bench.findings.threadpool_deadlock [--users 16] [--threads 4] [--pool 2]``

A FastAPI app with a sync yield dependency (``with Session() as s: yield s``) and a
``def`` endpoint with a ``response_model``, over psycopg 3 and SQLAlchemy's ``QueuePool``
(``pool_size`` connections, no overflow), run in-process through ``httpx.ASGITransport``
with anyio's thread limiter set to ``threads`` tokens. ``users`` requests arrive at once.

FastAPI runs the endpoint in the threadpool and, since #888, the response validation of a
``def`` endpoint too (``serialize_response`` → ``run_in_threadpool``); the dependency's exit,
which closes the session and returns the connection, comes after both. A request that got
a connection therefore needs a *second* thread token before it can give the connection
back. Once every token is held by an endpoint blocked in ``QueuePool`` checkout, the
connection holders wait for a token that only a connection can free: nothing completes
until ``pool_timeout`` fails the blocked checkouts.

Cases: ``as written`` (the pattern above); ``scope="function"`` (the dependency under
``Depends(..., scope="function")``: its exit still comes after the validation, which runs
inside the function scope); ``pool >= threads`` (``pool_size`` = ``threads``: the holders
give their tokens back while they wait, so the waiters take them all the same);
``close in handler`` (the endpoint closes the session before it returns; the row stays
loaded). ``--quick`` runs the first and the last. It prints per case the requests answered
before the pool timeout, the final statuses, the connections PostgreSQL saw ``idle in
transaction`` during the stall and when the last request was answered.
"""

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
import httpx
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from bench.findings.support import database, idle_in_transaction, notes
from variants.settings import DatabaseUrl

APP_NAME = "findings-threadpool"


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str


def build(
    url: DatabaseUrl, pool: int, timeout: float, close_in_handler: bool, scope: str
) -> FastAPI:
    engine = create_engine(
        url.psycopg,
        pool_size=pool,
        max_overflow=0,
        pool_timeout=timeout,
        connect_args={"application_name": APP_NAME},
    )
    session_factory = sessionmaker(engine, expire_on_commit=False)

    def get_session() -> Iterator[Session]:
        with session_factory() as session:
            yield session

    session_dep = Annotated[Session, Depends(get_session, scope=scope)]
    app = FastAPI()

    @app.get("/notes/{note_id}", response_model=NoteOut)
    def read(note_id: int, session: session_dep) -> object:
        row = session.execute(select(notes).where(notes.c.id == note_id)).one()
        if close_in_handler:
            session.close()  # the connection goes back before the response is validated
        return row

    app.state.engine = engine
    return app


@dataclass
class Outcome:
    case: str
    answered_before_timeout: int
    statuses: Counter[int]
    idle_in_transaction: int
    seconds: float

    def line(self) -> str:
        statuses = ", ".join(f"{n}× {s}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.case:18} answered before pool_timeout {self.answered_before_timeout:3}  "
            f"finally {statuses:16} idle in transaction during the stall "
            f"{self.idle_in_transaction}  last answer after {self.seconds:5.2f} s"
        )


async def run_case(
    case: str, url: DatabaseUrl, *, users: int, threads: int, pool: int, pool_timeout: float,
    close_in_handler: bool = False, scope: str = "request",
) -> Outcome:  # fmt: skip
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    app = build(url, pool, pool_timeout, close_in_handler, scope)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

            async def get(note_id: int) -> tuple[int, float]:
                response = await client.get(f"/notes/{note_id}")
                return response.status_code, time.perf_counter() - started

            tasks = [asyncio.create_task(get(1 + i % 100)) for i in range(users)]
            await asyncio.sleep(pool_timeout * 0.6)  # well inside the stall, before any timeout
            answered = sum(task.done() for task in tasks)
            idle = await idle_in_transaction(url, APP_NAME)
            responses = await asyncio.gather(*tasks)
    finally:
        app.state.engine.dispose()
    statuses = Counter(status for status, _ in responses)
    return Outcome(case, answered, statuses, idle, max(seconds for _, seconds in responses))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.findings.threadpool_deadlock", description=__doc__
    )
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--pool-timeout", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="pool_timeout 1 s, 2 cases")
    args = parser.parse_args(argv)
    timeout = 1.0 if args.quick else args.pool_timeout
    shape = {"users": args.users, "threads": args.threads, "pool_timeout": timeout}
    print(f"{args.users} users at once, {args.threads} threads, pool {args.pool}, "
          f"pool_timeout {timeout} s")  # fmt: skip
    with database() as url:
        cases = [
            ("as written", {"pool": args.pool}),
            ('scope="function"', {"pool": args.pool, "scope": "function"}),
            ("pool >= threads", {"pool": args.threads}),
            ("close in handler", {"pool": args.pool, "close_in_handler": True}),
        ]
        for name, options in [cases[0], cases[-1]] if args.quick else cases:
            outcome = asyncio.run(run_case(name, url, **shape, **options))
            print(outcome.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
