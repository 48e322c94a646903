"""Streaming that holds a connection: a ``StreamingResponse`` whose generator uses the request's
session.

``python -m bench.findings.streaming [--pages 5] [--delay 0.2]``

A FastAPI app in-process (``httpx.ASGITransport``, asyncpg, pool 2) streams ``pages``
pages of rows with ``delay`` seconds between pages (a slow client, or slow work per
page). The pool's checkout/checkin events time every connection hold. Cases:

- ``Depends (request scope)``: the generator reads each page through the request's
  session; that session's transaction, and with it the connection, lasts until the
  dependency's exit, which runs after the last byte (FastAPI ≥ 0.118). The scoped
  strategies (``remove()`` in a middleware after the app call) hold it the same way.
- ``Depends(scope="function")``: the dependency closes the session before the stream
  starts; the generator's first read autobegins a new transaction on the closed session,
  and nothing closes it again: the connection stays checked out after the stream.
- ``read before streaming``: the handler reads the rows, then streams them from memory
  (``scope="function"``): a hold of one query.
- ``session per page``: the generator opens ``async with Session()`` per page: one short
  hold per page.

It prints per case how long the stream took, the longest hold, the checkouts, and the
connections still checked out (and ``idle in transaction`` in PostgreSQL) after it ended.
"""

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bench.findings.support import collect_leaks, database, idle_in_transaction, notes
from variants.settings import DatabaseUrl

APP_NAME = "findings-streaming"
PAGE = 10
CASES = ("Depends (request scope)", 'Depends(scope="function")', "read before streaming",
         "session per page")  # fmt: skip


@dataclass
class Holds:
    """Checkout-to-checkin times of an engine's pool connections."""

    open: dict[int, float] = field(default_factory=dict)
    done: list[float] = field(default_factory=list)
    checkouts: int = 0

    def watch(self, engine: AsyncEngine) -> None:
        def checkout(dbapi: Any, record: Any, proxy: Any) -> None:
            self.checkouts += 1
            self.open[id(record)] = time.perf_counter()

        def checkin(dbapi: Any, record: Any) -> None:
            since = self.open.pop(id(record), None)
            if since is not None:
                self.done.append(time.perf_counter() - since)

        event.listen(engine.sync_engine, "checkout", checkout)
        event.listen(engine.sync_engine, "checkin", checkin)

    def longest(self) -> float:
        now = time.perf_counter()
        return max([*self.done, *(now - since for since in self.open.values())], default=0.0)


def build(engine: AsyncEngine, case: str, pages: int, delay: float) -> FastAPI:
    session_factory = async_sessionmaker(engine, expire_on_commit=False)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with session_factory() as session:
            yield session

    scope = "request" if case == CASES[0] else "function"
    session_dep = Annotated[AsyncSession, Depends(get_session, scope=scope)]
    app = FastAPI()

    def page(number: int) -> Any:
        return select(notes.c.id).order_by(notes.c.id).offset(number * PAGE).limit(PAGE)

    @app.get("/stream")
    async def stream(session: session_dep) -> StreamingResponse:
        async def through_session() -> AsyncIterator[str]:
            for number in range(pages):
                for note_id in await session.scalars(page(number)):
                    yield f'{{"id": {note_id}}}\n'
                await asyncio.sleep(delay)

        async def per_page() -> AsyncIterator[str]:
            for number in range(pages):
                async with session_factory() as own:
                    ids = list(await own.scalars(page(number)))
                for note_id in ids:
                    yield f'{{"id": {note_id}}}\n'
                await asyncio.sleep(delay)

        if case == CASES[2]:
            ids = list(await session.scalars(page(0).limit(pages * PAGE)))

            async def from_memory() -> AsyncIterator[str]:
                for number in range(pages):
                    for note_id in ids[number * PAGE : (number + 1) * PAGE]:
                        yield f'{{"id": {note_id}}}\n'
                    await asyncio.sleep(delay)

            return StreamingResponse(from_memory(), media_type="application/x-ndjson")
        body = per_page() if case == CASES[3] else through_session()
        return StreamingResponse(body, media_type="application/x-ndjson")

    return app


@dataclass
class Outcome:
    case: str
    rows: int
    stream_s: float
    longest_hold_s: float
    checkouts: int
    checked_out_after: int
    idle_after: int

    def line(self) -> str:
        return (
            f"{self.case:27} {self.rows} rows in {self.stream_s:.2f} s  longest hold "
            f"{self.longest_hold_s:.2f} s  checkouts {self.checkouts}  after the stream: "
            f"{self.checked_out_after} checked out, {self.idle_after} idle in transaction"
        )


async def run_case(url: DatabaseUrl, case: str, pages: int, delay: float) -> Outcome:
    app_name = f"{APP_NAME}-{CASES.index(case)}"  # a leak of one case is not counted in the next
    engine = create_async_engine(
        url.sqlalchemy, pool_size=2, max_overflow=0,
        connect_args={"server_settings": {"application_name": app_name}},
    )  # fmt: skip
    holds = Holds()
    holds.watch(engine)
    transport = httpx.ASGITransport(app=build(engine, case, pages, delay))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            started = time.perf_counter()
            response = await client.get("/stream")
            stream_s = time.perf_counter() - started
        await asyncio.sleep(0.3)  # anything that returns its connection late has done so
        return Outcome(
            case, len(response.text.splitlines()), stream_s, holds.longest(), holds.checkouts,
            engine.pool.checkedout(),  # type: ignore[attr-defined]
            await idle_in_transaction(url, app_name),
        )  # fmt: skip
    finally:
        await collect_leaks()
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.findings.streaming", description=__doc__)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="3 pages, 0.1 s apart")
    args = parser.parse_args(argv)
    pages, delay = (3, 0.1) if args.quick else (args.pages, args.delay)
    print(f"{pages} pages of {PAGE} rows, {delay} s between pages")
    with database() as url:
        for case in CASES:
            print(asyncio.run(run_case(url, case, pages, delay)).line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
