"""Integrity checks: from request counts and PostgreSQL's own view to named verdicts."""

import asyncio

import asyncpg
import pytest

from bench.common import integrity
from bench.common.integrity import Monitor, Observed, check_cell
from variants.settings import DatabaseUrl

WRITES = {"POST /todos 201": 100, "PATCH /todos/{id} 200": 100, "DELETE /todos/{id} 204": 90}


def observed(**overrides: object) -> Observed:
    values: dict[str, object] = {
        "todo_statements": 100 + 2 * 100 + 2 * 90, "all_statements": 900,
        "activity": {"idle": 10}, "seed_rows": 50, "extra_rows": 10, "peak_connections": 10,
        "titles": {"10051": "edit 1", "10052": "edit 7"},
    }  # fmt: skip
    return Observed(**{**values, **overrides})  # type: ignore[arg-type]


PATCHED = {"10051": "edit 1", "10052": "edit 7"}


def verdicts(
    obs: Observed,
    *,
    orm: bool = True,
    counts: dict[str, int] = WRITES,
    patched: dict[str, str] | None = PATCHED,
) -> dict[str, bool]:
    checks = check_cell(counts, obs, seed_rows=50, pool_limit=10, orm=orm, patched=patched)
    return {c.name: c.ok for c in checks}


def test_consistent_cell_passes_every_check() -> None:
    assert verdicts(observed()) == {
        "acknowledged_writes": True, "no_idle_in_transaction": True,
        "acknowledged_updates": True, "connections_within_pool": True,
        "statements_as_expected": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "failing"),
    [
        ({"extra_rows": 11}, "acknowledged_writes"),  # a phantom write
        ({"extra_rows": 9}, "acknowledged_writes"),  # a lost write
        ({"seed_rows": 49}, "acknowledged_writes"),
        ({"activity": {"idle": 9, "idle in transaction": 1}}, "no_idle_in_transaction"),
        ({"activity": {"idle": 11}}, "connections_within_pool"),
        # 12 connections while the load ran, back to 10 when it was sampled afterwards
        ({"peak_connections": 12}, "connections_within_pool"),
        # a PATCH answered 200 and rolled back: the row keeps its old title
        ({"titles": {"10051": "edit 1", "10052": "edit 6"}}, "acknowledged_updates"),
        ({"titles": {"10051": "edit 1", "10052": None}}, "acknowledged_updates"),  # row gone
        ({"todo_statements": 479}, "statements_as_expected"),
    ],
)
def test_each_inconsistency_is_caught(overrides: dict[str, object], failing: str) -> None:
    result = verdicts(observed(**overrides))
    assert [name for name, ok in result.items() if not ok] == [failing]


def test_plain_sql_variants_expect_one_statement_per_write() -> None:
    assert verdicts(observed(todo_statements=290), orm=False)["statements_as_expected"]


def test_an_unknown_request_name_fails_the_statement_check() -> None:
    counts = {**WRITES, "GET /elsewhere 200": 5}
    checks = check_cell(counts, observed(), seed_rows=50, pool_limit=10, orm=True)
    check = next(c for c in checks if c.name == "statements_as_expected")
    assert not check.ok and "/elsewhere" in check.detail


def test_every_request_name_the_locustfiles_send_is_in_the_statement_table() -> None:
    import ast

    from bench.load.scenarios import SCENARIOS

    for scenario in SCENARIOS.values():
        tree = ast.parse(scenario.locustfile.read_text())
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                name = next((k.value for k in call.keywords if k.arg == "name"), None)
                if isinstance(name, ast.Constant):
                    endpoint = f"{call.func.attr.upper()} {name.value}"
                    assert endpoint in integrity.ENDPOINT_STATEMENTS, (scenario.name, endpoint)


def test_without_acknowledged_patches_there_is_no_update_check() -> None:
    assert "acknowledged_updates" not in verdicts(observed(), patched=None)


def test_monitor_sees_what_postgres_sees(db: DatabaseUrl) -> None:
    monitor = Monitor(db, seed_rows=10_000)
    try:
        monitor.prepare()

        async def stuck_transaction() -> asyncpg.Connection:
            conn = await asyncpg.connect(
                db.asyncpg, server_settings={"application_name": "sessionbench-probe"}
            )
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO todos (title) VALUES ('uncommitted')")
            return conn

        async def committed() -> None:
            conn = await asyncpg.connect(db.asyncpg)
            await conn.execute("INSERT INTO todos (title) VALUES ('committed')")
            await conn.close()

        conn = monitor._run(stuck_transaction())
        monitor._run(committed())
        assert monitor.connections("sessionbench-probe") == 1
        seen = monitor.observe("sessionbench-probe", peak_connections=3, todo_ids=["1", "999999"])
        monitor._run(conn.close())
        assert seen.activity == {"idle in transaction": 1} and seen.peak_connections == 3
        assert seen.titles["999999"] is None and isinstance(seen.titles["1"], str)
        assert (seen.seed_rows, seen.extra_rows) == (10_000, 1)
        if monitor.has_statements:
            assert seen.todo_statements == 2  # two INSERTs since the reset
        monitor.prepare()
        assert monitor.observe("sessionbench-probe").extra_rows == 0
    finally:
        monitor.close()


def test_request_counts_parse_status() -> None:
    parsed = integrity.request_counts({"GET /todos/{id} 200": 3, "GET /todos/{id} 0": 1})
    assert parsed == {("GET /todos/{id}", 200): 3, ("GET /todos/{id}", 0): 1}


def test_monitor_finds_and_terminates_a_server_s_open_transactions(db: DatabaseUrl) -> None:
    monitor = Monitor(db)
    try:

        async def open_connection(app: str, begin: bool) -> asyncpg.Connection:
            conn = await asyncpg.connect(db.asyncpg, server_settings={"application_name": app})
            if begin:
                await conn.execute("BEGIN; SELECT 1")
            return conn

        stuck = monitor._run(open_connection("sessionbench-stuck-1", begin=True))
        idle = monitor._run(open_connection("sessionbench-stuck-1", begin=False))
        other = monitor._run(open_connection("sessionbench-other-2", begin=True))
        # only the named server's backends, only those in a transaction; never the monitor's
        found = monitor.open_transactions(["sessionbench-stuck-1", "sessionbench-runner"])
        assert [(b.app_name, b.state) for b in found] == [
            ("sessionbench-stuck-1", "idle in transaction")
        ]
        summary = integrity.lingering_summary(found)
        assert summary["count"] == 1 and summary["states"] == {"idle in transaction": 1}
        assert monitor.terminate(b.pid for b in found) == 1
        for _ in range(50):
            if not monitor.open_transactions(["sessionbench-stuck-1"]):
                break
            monitor._run(asyncio.sleep(0.05))
        assert not monitor.open_transactions(["sessionbench-stuck-1"])
        assert len(monitor.open_transactions(["sessionbench-other-2"])) == 1
        # The terminated backend sends its client a FATAL error, leaves pg_stat_activity,
        # and only then exits and closes the socket. asyncpg takes an error on an idle
        # connection for a protocol error and, until it reads the close, refuses a query
        # with InternalClientError ("cannot switch to state 11; another operation (2) is
        # in progress"): the client has to see its connection closed first.
        for _ in range(50):
            if stuck.is_closed():
                break
            monitor._run(asyncio.sleep(0.05))
        assert stuck.is_closed()
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            monitor._run(stuck.fetchval("SELECT 1"))  # its backend is gone
        for conn in (idle, other):
            monitor._run(conn.close())
        monitor._run(stuck.close(timeout=1))
    finally:
        monitor.close()
