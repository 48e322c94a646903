"""After every cell: did the database see exactly what the clients were told?

``Monitor`` is the runner's own connection to PostgreSQL (``application_name``
``sessionbench-runner``): it resets the data before a cell and reads, after it,
``pg_stat_statements``, ``pg_stat_activity`` (also sampled during the window, for the
peak) and the table. ``check_cell`` turns that and the recorder's request counts and
acknowledged PATCHes into named checks; a failed one makes the cell invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import asyncpg

from bench.common import database
from variants.settings import DatabaseUrl

T = TypeVar("T")

ENDPOINT_STATEMENTS: dict[str, tuple[int, int]] = {
    "GET /todos/{id}": (1, 1),
    "GET /todos?limit=20": (1, 1),
    "POST /todos": (1, 1),
    "PATCH /todos/{id}": (2, 1),
    "DELETE /todos/{id}": (2, 1),
    "GET /todos/{id}/multi?queries=10": (10, 10),
}
"""Statements on ``todos`` one successful request sends: (ORM session variants, Core/raw).

The ORM loads the row (``session.get``) before an UPDATE or DELETE; Core and raw SQL
send one ``UPDATE … RETURNING`` / ``DELETE … RETURNING``.
"""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Observed:
    """What PostgreSQL says after a cell."""

    todo_statements: int | None  # None: pg_stat_statements unavailable
    all_statements: int | None
    activity: dict[str, int]  # state -> connections of the variant under test
    seed_rows: int
    extra_rows: int
    peak_connections: int = 0  # most connections of the variant seen while the load ran
    titles: Mapping[str, str | None] = field(default_factory=dict)  # todo id -> title now


@dataclass(frozen=True)
class Backend:
    """A server's PostgreSQL backend still in a transaction (or a statement) between cells."""

    pid: int
    app_name: str
    state: str
    age_s: float


def lingering_summary(backends: list[Backend]) -> dict[str, Any]:
    """``{count, states: {state: n}, max_age_s}`` for a cell's record."""
    return {
        "count": len(backends),
        "states": dict(Counter(b.state for b in backends)),
        "max_age_s": round(max((b.age_s for b in backends), default=0.0), 1),
    }


class Monitor:
    """The runner's connection: prepare the database for a cell, observe it afterwards."""

    def __init__(self, url: DatabaseUrl, *, seed_rows: int = database.SEED_ROWS) -> None:
        self.url = url
        self.seed_rows = seed_rows
        self._loop = asyncio.new_event_loop()
        try:
            self._conn: asyncpg.Connection = self._run(
                database.connect(url, app_name="sessionbench-runner")
            )
        except BaseException:
            self._loop.close()
            raise
        self.has_statements = self._try("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if self.has_statements:
            self.has_statements = self._try("SELECT pg_stat_statements_reset()")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def _try(self, sql: str) -> bool:
        try:
            self._run(self._conn.execute(sql))
        except asyncpg.PostgresError:
            return False
        return True

    def server_info(self) -> dict[str, Any]:
        names = [
            "server_version", "max_connections", "shared_buffers", "fsync", "synchronous_commit",
            "wal_level", "shared_preload_libraries", "work_mem", "listen_addresses",
        ]  # fmt: skip
        rows = self._run(
            self._conn.fetch("SELECT name, setting FROM pg_settings WHERE name = any($1)", names)
        )
        settings = {row["name"]: row["setting"] for row in rows}
        return {"version": settings.pop("server_version", "?"), "settings": settings}

    def prepare(self) -> None:
        """Reset to the seed, settle the table and the WAL, zero the statement counters."""
        self._run(database.reset(self.url, rows=self.seed_rows))
        self._try("VACUUM ANALYZE todos")
        self._try("CHECKPOINT")
        if self.has_statements:
            self._try("SELECT pg_stat_statements_reset()")

    def connections(self, app_name: str) -> int:
        """Connections of the variant under test right now (sampled during the window)."""
        n = self._run(
            self._conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app_name
            )
        )
        return int(n)

    def observe(
        self, app_name: str, *, peak_connections: int = 0, todo_ids: Iterable[str] = ()
    ) -> Observed:
        todo_statements = all_statements = None
        if self.has_statements:
            rows = self._run(
                self._conn.fetch(
                    "SELECT query, calls FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " AND query NOT ILIKE '%pg_stat%'"
                )
            )
            all_statements = sum(row["calls"] for row in rows)
            todo_statements = sum(row["calls"] for row in rows if "todos" in row["query"])
        activity = self._run(
            self._conn.fetch(
                "SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity"
                " WHERE application_name = $1 GROUP BY 1",
                app_name,
            )
        )
        seed_rows, extra_rows = self._run(
            self._conn.fetchrow(
                "SELECT count(*) FILTER (WHERE id <= $1), count(*) FILTER (WHERE id > $1)"
                " FROM todos",
                self.seed_rows,
            )
        )
        ids = [int(i) for i in todo_ids]
        rows = self._run(self._conn.fetch("SELECT id, title FROM todos WHERE id = any($1)", ids))
        titles: dict[str, str | None] = dict.fromkeys(map(str, ids))
        titles |= {str(row["id"]): row["title"] for row in rows}
        return Observed(
            todo_statements,
            all_statements,
            {row["state"]: row["n"] for row in activity},
            seed_rows,
            extra_rows,
            peak_connections,
            titles,
        )

    def open_transactions(self, app_names: Iterable[str]) -> list[Backend]:
        """Backends of the servers named *app_names* holding a transaction or running a
        statement (``idle in transaction``, ``… (aborted)``, ``active``): between cells,
        after the load stopped, none should."""
        rows = self._run(
            self._conn.fetch(
                "SELECT pid, application_name, state,"
                " extract(epoch FROM now() - coalesce(xact_start, query_start, backend_start))"
                " AS age FROM pg_stat_activity"
                " WHERE application_name = any($1) AND pid <> pg_backend_pid()"
                " AND (state LIKE 'idle in transaction%' OR state = 'active')",
                list(app_names),
            )
        )
        return [
            Backend(row["pid"], row["application_name"], row["state"], float(row["age"] or 0))
            for row in rows
        ]

    def terminate(self, pids: Iterable[int]) -> int:
        """``pg_terminate_backend`` each of *pids*; how many PostgreSQL signalled."""
        done = self._run(
            self._conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM unnest($1::int[]) AS pid",
                list(pids),
            )
        )
        return int(done or 0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._conn.close(timeout=5))
        self._loop.close()


def request_counts(counts: Mapping[str, int]) -> Counter[tuple[str, int]]:
    """``{"POST /todos 201": n}`` → ``{("POST /todos", 201): n}``."""
    parsed: Counter[tuple[str, int]] = Counter()
    for key, n in counts.items():
        endpoint, _, status = key.rpartition(" ")
        parsed[endpoint, int(status)] += n
    return parsed


def expected_statements(counts: Counter[tuple[str, int]], *, orm: bool) -> tuple[int, list[str]]:
    """Statements on ``todos`` the successful requests should have sent, and the request
    names the table does not know (their statements cannot be predicted)."""
    total = 0
    unknown = set()
    for (endpoint, status), n in counts.items():
        if not 200 <= status < 300:
            continue
        if endpoint not in ENDPOINT_STATEMENTS:
            unknown.add(endpoint)
            continue
        total += n * ENDPOINT_STATEMENTS[endpoint][0 if orm else 1]
    return total, sorted(unknown)


def check_cell(
    counts: Mapping[str, int],
    observed: Observed,
    *,
    seed_rows: int,
    pool_limit: int,
    orm: bool,
    patched: Mapping[str, str] | None = None,
) -> list[Check]:
    """The integrity checks of one cell, from the clients' counts and the database's view.

    *patched*: todo id -> title of its last acknowledged PATCH (ids whose later PATCH or
    DELETE was never acknowledged left out); ``observed.titles`` must hold those ids.
    """
    requests = request_counts(counts)
    created = requests["POST /todos", 201]
    deleted = requests["DELETE /todos/{id}", 204]
    checks = [
        Check(
            "acknowledged_writes",
            observed.extra_rows == created - deleted and observed.seed_rows == seed_rows,
            f"{created} created - {deleted} deleted acknowledged; database has "
            f"{observed.extra_rows} new rows and {observed.seed_rows}/{seed_rows} seed rows",
        )
    ]
    stuck = sum(n for state, n in observed.activity.items() if "idle in transaction" in state)
    checks.append(
        Check("no_idle_in_transaction", stuck == 0, f"{stuck} idle-in-transaction connections")
    )
    if patched is not None:
        lost = sorted(i for i, title in patched.items() if observed.titles.get(i) != title)
        example = f" (e.g. todo {lost[0]}: {observed.titles.get(lost[0])!r})" if lost else ""
        checks.append(
            Check(
                "acknowledged_updates",
                not lost,
                f"{len(patched) - len(lost)} of {len(patched)} acknowledged PATCHes visible"
                + example,
            )
        )
    after = sum(observed.activity.values())
    total = max(after, observed.peak_connections)
    checks.append(
        Check(
            "connections_within_pool",
            total <= pool_limit,
            f"{total} of {pool_limit} allowed (peak {observed.peak_connections} during the "
            f"window, {after} after it)",
        )
    )
    expected, unknown = expected_statements(requests, orm=orm)
    if observed.todo_statements is not None:
        checks.append(
            Check(
                "statements_as_expected",
                observed.todo_statements == expected and not unknown,
                f"unknown request names {unknown}: statements cannot be predicted"
                if unknown
                else f"{observed.todo_statements} statements on todos, expected {expected}",
            )
        )
    return checks
