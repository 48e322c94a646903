"""Session lifecycle per strategy: no I/O, one ``SELECT 1``, one primary-key ``get``; the registry.

Each session operation (a variant's ``micro_session``, declared by its ``Micro``; shared with
``sessionbench cost`` through ``bench.common.micro_ops``) is one strategy's way to open, use
and end a session, written as the variant's requests do it; its docstring is its label.
``sync_threadpool`` has no row here: its sync ``Session`` is not a coroutine on the event loop
these rows time, and what a request costs it (threadpool hand-offs included) is in the
request-level groups (``test_requests``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import literal, select

from bench.common.micro_ops import USES, check_strategy, checked_out, session_names, strategy

BATCH = {"lifecycle": 1000, "select1": 200, "get": 200}


@pytest.mark.parametrize("name", session_names())
@pytest.mark.parametrize("group", list(USES))
def test_session(name: str, group: str, measure, benchmark, loop) -> None:
    operation = strategy(name)  # imports the variant's module: after micro_db set DATABASE_URL
    benchmark.group = group
    benchmark.extra_info["label"] = operation.__doc__
    use = USES[group]
    measure(lambda: operation(use), batch=BATCH[group])
    check_strategy(operation, group, loop)


async def core_select1() -> None:
    """core: engine.connect() + SELECT 1"""
    from variants.engine import engine

    async with engine.connect() as conn:
        await conn.execute(select(literal(1)))


def test_core_select1(measure, benchmark, loop) -> None:
    from variants.engine import engine

    benchmark.group = "select1"
    benchmark.extra_info["label"] = core_select1.__doc__
    measure(core_select1, batch=200)

    async def one() -> object:
        async with engine.connect() as conn:
            return (await conn.execute(select(literal(1)))).scalar_one()

    assert loop.run_until_complete(one()) == 1 and checked_out() == 0


def test_raw_select1(measure, benchmark, loop, micro_db) -> None:
    """raw: pool.acquire() + SELECT 1 + release"""
    import asyncpg

    benchmark.group = "select1"
    benchmark.extra_info["label"] = "raw: pool.acquire() + SELECT 1 + release"

    async def create() -> asyncpg.Pool:
        return await asyncpg.create_pool(micro_db.asyncpg, min_size=1, max_size=1)

    pool = loop.run_until_complete(create())

    async def op() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def one() -> object:
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT 1")

    try:
        measure(op, batch=200)
        assert loop.run_until_complete(one()) == 1
        assert pool.get_size() == 1 and pool.get_idle_size() == 1  # released after each op
    finally:
        loop.run_until_complete(pool.close())


@pytest.mark.parametrize("what", ["registry()", "session()", "session.is_active"])
def test_scoped_registry_hit(what: str, measure, benchmark, loop) -> None:
    """The scoped proxy on a hit: the registry lookup, the call, one proxied attribute."""
    from variants.scoped import session, set_scoped_context

    benchmark.group = "registry"
    benchmark.extra_info["label"] = f"scoped: {what} when the session exists"
    ops: dict[str, Callable[[], object]] = {
        "registry()": session.registry,
        "session()": session,
        "session.is_active": lambda: session.is_active,
    }
    read = ops[what]

    async def op() -> None:
        read()

    with set_scoped_context():
        first = session()
        try:
            measure(op, batch=10_000)
            # A hit: the same session every time, none created by the timed reads.
            assert session.registry.has() and session() is first and session.registry() is first
            assert session.is_active is first.is_active is True
        finally:
            loop.run_until_complete(session.remove())
        assert not session.registry.has()
