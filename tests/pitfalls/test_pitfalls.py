"""Each pitfall scenario against strategies whose outcome is known, with plausible numbers.

The servers are real ``sessionbench serve`` children with the pitfall run's pool settings;
a server a scenario left damaged (connections still checked out) is restarted before
the next test uses it, exactly as the runner does.
"""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.common import database
from bench.common.result_files import PitfallCell, PitfallFile
from bench.common.server import VariantServer
from bench.pitfalls import scenarios
from bench.pitfalls.probe import BROKEN, DEGRADED, OK, Outcome, Skip, Target
from bench.pitfalls.repeats import aggregate
from bench.pitfalls.report import findings, outcome_text, pre_ping_split, row_label, rows
from bench.pitfalls.runner import SCHEMA, unhealthy
from variants.settings import PRE_PING_ENV, DatabaseUrl, Settings

POOL = {"SESSIONBENCH_POOL_SIZE": "10", "SESSIONBENCH_POOL_TIMEOUT": "2"}


def make_target(
    server: VariantServer, url: DatabaseUrl, pg: database.EmbeddedPostgres | None = None
) -> Target:
    return Target(server, url, pg, pool_size=10, pool_timeout=2.0, quick=True, soak_seconds=3.0)


@pytest.fixture(scope="module")
def target(
    db: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Target]]:
    """A healthy target for a variant: started once, restarted if a scenario damaged it."""
    logs = tmp_path_factory.mktemp("pitfall-logs")
    servers: dict[str, VariantServer] = {}

    def get(name: str) -> Target:
        if name not in servers:
            servers[name] = VariantServer(
                name, db, log_path=Path(logs) / f"{name}.log", env=POOL, lab=True
            )
            servers[name].start()
        found = make_target(servers[name], db)
        if not servers[name].alive() or asyncio.run(unhealthy(found)):
            servers[name].stop()
            servers[name].start()
        return found

    yield get
    for server in servers.values():
        server.stop()


def run(scenario: scenarios.Scenario, target: Target) -> Outcome:
    return asyncio.run(scenario(target))


def test_fanout_leak_is_found_in_scoped_and_not_in_context(target: Callable[[str], Target]) -> None:
    scoped = run(scenarios.fanout, target("scoped"))
    assert scoped.outcome == BROKEN, scoped
    n = scoped.numbers
    # On a warm pool the shared session gets away with it; when queries must wait for a
    # connection, IllegalStateChangeError → 500 and the connection is never returned.
    assert n["one_by_one"] == {"200": 5} and n["at_once"].get("500", 0) >= 1
    assert 1 <= n["leaked_connections"] <= 10 and n["registry_after"] == n["leaked_connections"]
    assert n["idle_in_transaction_after"] == n["leaked_connections"]
    context = run(scenarios.fanout, target("context"))
    assert context.outcome == OK, context
    assert context.numbers["errors"] == 0 and context.numbers["leaked_connections"] == 0
    assert context.numbers["at_once"] == {"200": 10}


def test_fanout_in_scoped_task_leaks_silently(target: Callable[[str], Target]) -> None:
    found = run(scenarios.fanout, target("scoped_task"))
    assert found.outcome == BROKEN, found
    # Every request "works", but each gathered task kept its own session and connection.
    assert found.numbers["one_by_one"] == {"200": 5}
    assert found.numbers["leaked_connections"] == 10  # 2 per request: the pool of 10 is gone
    # the follow-up waits for a pooled connection that never comes: 503, the pool timeout
    assert found.numbers["registry_after"] >= 10 and found.numbers["follow_up_get"] == "503"


def test_background_task_holds_the_request_connection_in_scoped_not_in_context(
    target: Callable[[str], Target],
) -> None:
    scoped = run(scenarios.background, target("scoped"))
    assert scoped.outcome == DEGRADED, scoped
    n = scoped.numbers
    assert n["written"] == n["requests"] == n["same_backend_as_request"]
    assert n["held_while_task_waits"] >= 1 and n["leaked_connections"] == 0
    context = run(scenarios.background, target("context"))
    assert context.outcome == OK, context
    assert context.numbers["written"] == 2 and context.numbers["held_while_task_waits"] == 0


def test_streaming_keeps_a_transaction_open_in_depends_not_in_context(
    target: Callable[[str], Target],
) -> None:
    depends = run(scenarios.streaming, target("depends"))
    assert depends.outcome == DEGRADED, depends
    n = depends.numbers
    assert n["rows"] == n["rows_expected"] == 100
    assert n["stream_s"] / 2 < n["longest_open_transaction_s"] < n["stream_s"] + 1
    context = run(scenarios.streaming, target("context"))
    assert context.outcome == OK, context
    assert context.numbers["rows"] == 100 and context.numbers["longest_open_transaction_s"] < 0.5


def test_streaming_from_a_function_scoped_dependency_leaks(target: Callable[[str], Target]) -> None:
    found = run(scenarios.streaming, target("depends_function"))
    assert found.outcome == BROKEN, found
    assert found.numbers["rows"] == 100 and found.numbers["leaked_connections"] == 1


def test_disconnected_clients_give_their_connections_back_in_context(
    target: Callable[[str], Target],
) -> None:
    found = run(scenarios.disconnect, target("context"))
    assert found.outcome == OK, found
    n = found.numbers
    assert n["cancelled_requests"] == 10 and n["leaked_connections"] == 0
    # The queries run to completion after the client left, then the pool is whole again.
    assert 0 < n["connections_back_after_s"] <= n["query_seconds"] + 1


@pytest.mark.parametrize("name", ["scoped", "depends", "context"])
def test_a_handler_error_after_a_write_writes_nothing(
    target: Callable[[str], Target], name: str
) -> None:
    found = run(scenarios.handler_error, target(name))
    assert found.outcome == OK, found
    assert found.numbers["statuses"] == {"500": 3} and found.numbers["rows_written"] == 0


def test_a_failed_commit_is_not_acknowledged(target: Callable[[str], Target]) -> None:
    found = run(scenarios.failed_commit, target("scoped"))
    assert found.outcome == OK, found
    n = found.numbers
    assert n["acknowledged"] == 0 and n["rows_written"] == 0 and n["leaked_connections"] == 0


@pytest.mark.parametrize(
    ("name", "acknowledged"),
    [("depends_commit", True), ("depends_commit_function", False), ("depends", False)],
)
def test_a_commit_after_yield_acknowledges_failing_commits_unless_function_scoped(
    target: Callable[[str], Target], name: str, acknowledged: bool
) -> None:
    """``depends_commit`` commits after the response was sent: a COMMIT that fails (a
    deferred constraint) or a flush at commit that fails (a duplicate key) was answered
    201 already. Its ``scope="function"`` twin commits before the response: 500."""
    found = run(scenarios.acknowledged, target(name))
    n = found.numbers
    assert n["rows_written"] == 0 and n["leaked_connections"] == 0, found
    flushed = run(scenarios.failed_commit, target(name))
    assert flushed.numbers["rows_written"] == 0, flushed
    if acknowledged:
        assert found.outcome == BROKEN and n["statuses"] == {"201": 5}, found
        assert n["acknowledged_not_committed"] == 5
        assert flushed.outcome == BROKEN and flushed.numbers["statuses"] == {"201": 3}, flushed
    else:
        assert found.outcome == OK and n["statuses"] == {"500": 5}, found
        assert flushed.outcome == OK and flushed.numbers["statuses"] == {"500": 3}, flushed


def test_acknowledged_writes_are_visible_at_once(target: Callable[[str], Target]) -> None:
    found = run(scenarios.visibility, target("depends"))
    assert found.outcome == OK, found
    assert found.numbers["writes"] == 20 and found.numbers["failed_writes"] == 0
    assert found.numbers["api_read_misses"] == found.numbers["db_read_misses"] == 0


def test_pool_exhaustion_is_served_in_waves(target: Callable[[str], Target]) -> None:
    found = run(scenarios.exhaustion, target("context"))
    assert found.outcome == OK, found
    n = found.numbers
    assert n["statuses"] == {"200": 40}
    # Four waves of 0.3 s through ten connections cannot finish sooner than 1.2 s.
    assert n["ideal_s"] * 0.95 <= n["max_s"] < n["ideal_s"] + 2
    assert n["p50_s"] < n["max_s"] and n["health_p99_ms"] > 0


def test_soak_samples_memory_and_registry(target: Callable[[str], Target]) -> None:
    """A 3 s soak is sampled at 0, 0.5, … 2.5 s: six rows, each taken at or after its due
    time. (It asked for at least 5 while each sample was due 0.5 s after the previous one
    ended: on a loaded machine a sample through the busy server took 0.2–0.4 s, which
    stretched the period to 0.7 s and left 4.)"""
    found = run(scenarios.soak, target("scoped"))
    assert found.outcome == OK, found
    n = found.numbers
    assert n["requests"] > 0 and n["errors"] == 0 and n["rss_start_mb"] > 20
    assert n["registry_max"] is not None and n["registry_after"] == 0
    assert found.series is not None
    times = [row[0] for row in found.series["soak"]]
    assert len(times) == 6 and all(t >= due * scenarios.SOAK_EVERY for due, t in enumerate(times))
    assert times == sorted(times) and n["seconds"] >= 3.0


def test_postgres_restart_errors_then_recovers(tmp_path: Path) -> None:
    with database.EmbeddedPostgres() as pg:
        asyncio.run(database.ensure_schema(pg.url))
        server = VariantServer("context", pg.url, log_path=tmp_path / "s.log", env=POOL, lab=True)
        with server:
            found = run(scenarios.pg_restart, make_target(server, pg.url, pg))
            assert pg.pid is not None  # running again
    # Nothing pre-pings the pool: after a restart during idle time, a stale connection fails
    # one request (SQLAlchemy then drops the whole pool).
    assert found.outcome == DEGRADED, found
    n = found.numbers
    assert 1 <= n["errors_after_idle_restart"] < 10
    assert n["recovered"] and n["errors_during_outage"] >= 1 and n["leaked_connections"] == 0
    assert n["statuses"].get("200", 0) > n["errors_during_outage"]
    assert n["recovery_s"] < 10
    assert found.series is not None
    assert sum(b[2] for b in found.series["restart"]["buckets"]) >= n["errors_during_outage"]


def test_postgres_restart_is_skipped_without_an_embedded_server(
    target: Callable[[str], Target],
) -> None:
    with pytest.raises(Skip, match="external"):
        run(scenarios.pg_restart, target("context"))


def _run(outcome: str, idle_errors: int, **extra: object) -> dict[str, object]:
    """One run of a restart cell as the runner records it."""
    return {
        "variant": "scoped", "scenario": "pg_restart", "pool_pre_ping": False, "outcome": outcome,
        "summary": f"{outcome} run", "numbers": {"errors_after_idle_restart": idle_errors},
        "notes": [], "seconds": 3.0, **extra,
    }  # fmt: skip


def test_a_repeated_restart_cell_is_its_worst_outcome_with_its_count() -> None:
    runs = [
        _run(OK, 0),
        _run(BROKEN, 1, series={"restart": "first broken"}, notes=["left sessions"]),
        _run(DEGRADED, 1),
        _run(BROKEN, 2, series={"restart": "second broken"}, notes=["left sessions"]),
        _run(DEGRADED, 1),
    ]
    cell = aggregate(runs)
    assert cell["outcome"] == BROKEN
    assert cell["worst"] == {"outcome": BROKEN, "count": 2, "of": 5}
    assert cell["tally"] == {BROKEN: 2, DEGRADED: 2, OK: 1}
    assert (
        outcome_text(PitfallCell.model_validate(cell))
        == "broken 2 of 5, degraded 2 of 5, ok 1 of 5"
    )
    assert cell["summary"] == "broken 2 of 5, degraded 2 of 5, ok 1 of 5; worst run: broken run"
    # The numbers and series shown are those of the first run with the worst outcome.
    assert cell["numbers"] == {"errors_after_idle_restart": 1}
    assert cell["series"] == {"restart": "first broken"}
    assert [r["outcome"] for r in cell["runs"]] == [OK, BROKEN, DEGRADED, BROKEN, DEGRADED]
    assert (
        "series" not in cell["runs"][1]
        and cell["runs"][3]["numbers"]["errors_after_idle_restart"] == 2
    )
    assert cell["notes"] == ["left sessions"] and cell["seconds"] == 15.0
    assert (cell["variant"], cell["scenario"], cell["pool_pre_ping"]) == (
        "scoped",
        "pg_restart",
        False,
    )


def test_a_restart_cell_run_once_says_n_1_and_an_unrepeated_cell_says_only_its_outcome() -> None:
    once = aggregate([_run(DEGRADED, 1)])
    assert once["worst"] == {"outcome": DEGRADED, "count": 1, "of": 1}
    assert outcome_text(PitfallCell.model_validate(once)) == "degraded (n=1)"
    assert once["summary"] == "degraded run"
    assert outcome_text(PitfallCell.model_validate(_run(DEGRADED, 1))) == DEGRADED
    # An error (the scenario crashed) ranks above degraded, below broken.
    assert aggregate([_run(DEGRADED, 1), _run("error", 0)])["outcome"] == "error"
    assert aggregate([_run("error", 0), _run(BROKEN, 0)])["outcome"] == BROKEN


def matrix(doc: dict[str, Any]) -> PitfallFile:
    """*doc* as the report reads a pitfalls.json (with a header)."""
    header = {"schema": SCHEMA, "status": "complete", "environment": {}, "variants": {}}
    return PitfallFile.model_validate(header | doc)


def _restart_doc(on: dict[str, str]) -> dict[str, Any]:
    """A matrix of fanout plus pg_restart under pre-ping off (every strategy degraded) and on
    (outcomes *on*)."""
    names = ["scoped", "depends", "context"]
    cells = [
        {"variant": n, "scenario": "fanout", "pool_pre_ping": False, "outcome": OK, "numbers": {}}
        for n in names
    ]
    for pre_ping, outcomes in ((False, dict.fromkeys(names, DEGRADED)), (True, on)):
        idle = 0 if pre_ping else 1  # pre-ping spares the requests after an idle restart
        cells += [
            aggregate([_run(outcomes[n], idle, variant=n, pool_pre_ping=pre_ping)]) for n in names
        ]
    return {
        "settings": {"variants": names, "scenarios": ["fanout", "pg_restart"]},
        "scenarios": {"fanout": "Fan-out", "pg_restart": "PostgreSQL restart mid-load"},
        "cells": cells,
    }


def test_the_report_splits_the_restart_row_by_pre_ping_and_names_what_the_setting_fixes() -> None:
    doc = matrix(_restart_doc(dict.fromkeys(["scoped", "depends", "context"], OK)))
    assert rows(doc) == [("fanout", False), ("pg_restart", False), ("pg_restart", True)]
    labels = [row_label(doc, row) for row in rows(doc)]
    assert labels == ["fanout", "pg_restart (pre-ping off)", "pg_restart (pre-ping on)"]
    lines = findings(doc)
    assert lines[1] == (
        "PostgreSQL restart mid-load (pre-ping off) — degraded: scoped, depends, context."
    )
    assert lines[2] == "PostgreSQL restart mid-load (pre-ping on) — ok: scoped, depends, context."
    assert lines[3] == (
        "PostgreSQL restart mid-load, off vs on — requests failing on stale pooled connections "
        "after a restart during idle time: every strategy with pre-ping off (3 of 3 runs), none "
        "with pre-ping on: a pool setting, not a strategy's doing."
    )
    # A strategy that still fails with pre-ping on is the strategy's own doing.
    raw = _restart_doc({"scoped": BROKEN, "depends": OK, "context": OK})
    doc = matrix(raw)
    assert pre_ping_split(doc, "pg_restart") == {
        "pool setting": ["depends", "context"], "strategy": ["scoped"], "ok": [],
    }  # fmt: skip
    assert findings(doc)[3].endswith(
        "a pool setting, not a strategy's doing; failing with pre-ping on too: scoped [broken "
        "(n=1)]."
    )
    # Without a known symptom for the scenario, the outcomes alone say what the setting fixed.
    raw["cells"] = [c | {"scenario": "other"} if c["scenario"] == "pg_restart" else c
                    for c in raw["cells"]]  # fmt: skip
    raw["settings"]["scenarios"] = ["fanout", "other"]
    assert findings(matrix(raw))[3] == (
        "other, off vs on — pre-ping fixes what depends, context showed with it off: a pool "
        "setting, not the strategy's doing; failing with pre-ping on too: scoped [broken (n=1)]."
    )


def test_pre_ping_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@localhost/db")
    monkeypatch.delenv(PRE_PING_ENV, raising=False)
    assert Settings.from_env().pool_pre_ping is False
    monkeypatch.setenv(PRE_PING_ENV, "1")
    assert Settings.from_env().pool_pre_ping is True
    monkeypatch.setenv(PRE_PING_ENV, "yes")
    with pytest.raises(ValueError, match=PRE_PING_ENV):
        Settings.from_env()
