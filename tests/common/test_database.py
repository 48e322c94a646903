"""bench.common.database and variants.settings: URL forms, the embedded server, schema and seed."""

import asyncio
import os

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import database
from variants.settings import DatabaseUrl, Settings


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("postgresql://u:p@db:5432/x", "postgresql://u:p@db:5432/x"),
        ("postgres://u@db/x", "postgresql://u@db/x"),
        ("postgresql+asyncpg://u:p@db/x", "postgresql://u:p@db/x"),
        (
            "postgresql://postgres@/postgres?host=/tmp/sock",
            "postgresql://postgres@/postgres?host=/tmp/sock",
        ),
    ],
)
def test_url_forms_are_normalised(raw: str, normalised: str) -> None:
    url = DatabaseUrl.parse(raw)
    assert url.asyncpg == normalised
    assert url.sqlalchemy == "postgresql+asyncpg" + normalised.removeprefix("postgresql")


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "sqlite:///x.db", "postgresql:///db", "x"])
def test_unsupported_urls_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        DatabaseUrl.parse(raw)


def test_passwords_are_redacted() -> None:
    assert DatabaseUrl.parse("postgresql://me:s3cret@db/x").redacted == "postgresql://me:***@db/x"
    redacted = DatabaseUrl.parse("postgresql://me@/x?host=/s&password=s3cret").redacted
    assert "s3cret" not in redacted and "host=/s" in redacted


def test_settings_need_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="DATABASE_URL is not set"):
        Settings.from_env()
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("SESSIONBENCH_POOL_SIZE", "32")
    assert Settings.from_env().pool_size == 32


def test_both_url_forms_reach_the_server_over_its_socket(db: DatabaseUrl) -> None:
    async def both() -> tuple[int, int]:
        conn = await asyncpg.connect(db.asyncpg)
        one = await conn.fetchval("SELECT 1")
        await conn.close()
        engine = create_async_engine(db.sqlalchemy)
        async with engine.connect() as sa_conn:
            two = (await sa_conn.execute(text("SELECT 2"))).scalar_one()
        await engine.dispose()
        return one, two

    assert asyncio.run(both()) == (1, 2)


def test_embedded_server_preloads_pg_stat_statements_and_is_deleted_on_close() -> None:
    server = database.EmbeddedPostgres()
    with server:
        pid = server.pid
        assert pid is not None

        async def probe() -> str:
            conn = await asyncpg.connect(server.url.asyncpg)
            try:
                return str(await conn.fetchval("SHOW shared_preload_libraries"))
            finally:
                await conn.close()

        assert "pg_stat_statements" in asyncio.run(probe())
    assert not server.pgdata.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_reset_restores_the_deterministic_seed() -> None:
    async def scenario(url: DatabaseUrl) -> tuple[object, ...]:
        assert await database.ensure_schema(url, rows=50) is True
        assert await database.ensure_schema(url, rows=50) is False
        conn = await asyncpg.connect(url.asyncpg)
        try:
            first = await conn.fetch("SELECT * FROM todos ORDER BY id")
            await conn.execute("DELETE FROM todos WHERE id < 10")
            await conn.execute("INSERT INTO todos (title) VALUES ('extra')")
            await database.reset(url, rows=50)
            again = await conn.fetch("SELECT * FROM todos ORDER BY id")
            next_id = await conn.fetchval("INSERT INTO todos (title) VALUES ('n') RETURNING id")
            return first, again, next_id
        finally:
            await conn.close()

    with database.EmbeddedPostgres() as server:
        first, again, next_id = asyncio.run(scenario(server.url))
    assert len(first) == 50 and [dict(r) for r in first] == [dict(r) for r in again]
    assert first[0]["title"] == "todo 1" and next_id == 51
