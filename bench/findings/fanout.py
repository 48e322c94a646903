"""Fan-out on one session: ``asyncio.gather`` over one ``AsyncSession``.

``python -m bench.findings.fanout [--tasks 4]``

No FastAPI: one ``AsyncSession`` (asyncpg, pool of ``tasks + 1``), ``tasks`` primary-key
reads started at once with ``asyncio.gather`` on it, as a handler that "parallelises its
queries" writes it. The first read autobegins the session's transaction and starts
checking out a connection; the second finds the session in the middle of that
(``_connection_for_bind``) and SQLAlchemy refuses: ``IllegalStateChangeError`` or "This
session is provisioning a new connection; concurrent operations are not permitted". The
``async with`` block then closes the session while a sibling task still runs on it.

Then the workaround: one session per task (``async with Session() as s`` inside each
task), against the same reads one after another on one session. It prints the error, the
pool's checked-out connections and PostgreSQL's ``idle in transaction`` count after the
block, and for the workaround the connections and time each form takes.
"""

import argparse
import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bench.findings.support import collect_leaks, database, idle_in_transaction, notes
from variants.settings import DatabaseUrl

APP_NAME = "findings-fanout"


async def read(session: AsyncSession, note_id: int) -> str:
    title: str = (
        await session.execute(select(notes.c.title).where(notes.c.id == note_id))
    ).scalar_one()
    return title


@dataclass
class Broken:
    error: str
    checked_out_after: int
    idle_in_transaction_after: int


async def one_session(engine: AsyncEngine, url: DatabaseUrl, tasks: int) -> Broken:
    session_factory = async_sessionmaker(engine)
    error = "none"
    try:
        async with session_factory() as session:
            await asyncio.gather(*(read(session, i) for i in range(1, tasks + 1)))
    except Exception as exc:
        chain: list[BaseException] = []
        cause: BaseException | None = exc
        while cause is not None and len(chain) < 3:
            chain.append(cause)
            cause = cause.__context__
        # The first failure is last in the chain: __aexit__'s close() raised on top of it.
        error = "\n  ".join(
            f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in reversed(chain)
        )
    await asyncio.sleep(0.2)  # let the sibling tasks finish what they started
    pool = engine.pool
    return Broken(error, pool.checkedout(), await idle_in_transaction(url, APP_NAME))  # type: ignore[attr-defined]


@dataclass
class Timed:
    form: str
    connections: int  # most checked out at once
    milliseconds: float


async def timed(engine: AsyncEngine, tasks: int, per_task: bool, rounds: int) -> Timed:
    session_factory = async_sessionmaker(engine)
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, engine.pool.checkedout())  # type: ignore[attr-defined]
            await asyncio.sleep(0)

    async def own(note_id: int) -> str:
        async with session_factory() as session:
            return await read(session, note_id)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    for _ in range(rounds):
        if per_task:
            await asyncio.gather(*(own(i) for i in range(1, tasks + 1)))
        else:
            async with session_factory() as session:
                for i in range(1, tasks + 1):
                    await read(session, i)
    elapsed = (time.perf_counter() - started) / rounds * 1e3
    sampler.cancel()
    form = "one session per task, gathered" if per_task else "one session, one after another"
    return Timed(form, peak, elapsed)


async def run(url: DatabaseUrl, tasks: int, rounds: int) -> None:
    engine = create_async_engine(
        url.sqlalchemy, pool_size=tasks + 1, max_overflow=0, pool_timeout=5,
        connect_args={"server_settings": {"application_name": APP_NAME}},
    )  # fmt: skip
    try:
        broken = await one_session(engine, url, tasks)
        print(f"gather over one session, {tasks} reads:\n  {broken.error}")
        print(f"  after the block: {broken.checked_out_after} connection(s) still checked out, "
              f"{broken.idle_in_transaction_after} idle in transaction")  # fmt: skip
        # Fresh pool for the timings: the leaked connection above must not count.
        await collect_leaks()
        await engine.dispose()
        for _ in range(2):  # warm the pool (connections opened) before timing
            await timed(engine, tasks, True, 1)
        for per_task in (False, True):
            result = await timed(engine, tasks, per_task, rounds)
            print(f"workaround check: {result.form:32} {result.connections} connection(s) at "
                  f"once, {result.milliseconds:.2f} ms per {tasks} reads")  # fmt: skip
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.findings.fanout", description=__doc__)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 timing rounds")
    args = parser.parse_args(argv)
    with database() as url:
        asyncio.run(run(url, args.tasks, 20 if args.quick else args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
