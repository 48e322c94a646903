"""The sqlmodel and sync_threadpool variants (issue 16): registered, serving the contract,
the threadpool's size recorded in run.json, and asyncio pool queues refused for the sync one.
The commit-after-yield pair (issue 24): ``depends_commit`` answers a write before its
COMMIT has run, its ``scope="function"`` twin after it (a COMMIT slowed on purpose shows it).
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

import variants
from bench.common import environments
from bench.common.server import VariantServer
from bench.common.verify import CHECKS, Context, read_your_write, run_check
from variants.settings import DatabaseUrl

NEW = ["sqlmodel", "sync_threadpool"]
CLI = [sys.executable, "-m", "bench.cli"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)


def test_both_are_listed_with_their_kind_and_flags() -> None:
    listed = cli("variants").stdout.split()
    assert set(NEW) <= set(listed)
    sqlmodel, sync = variants.get("sqlmodel"), variants.get("sync_threadpool")
    assert (sqlmodel.kind, sqlmodel.library, sqlmodel.orm, sqlmodel.threads) == (
        "library", "sqlmodel", True, False
    )  # fmt: skip
    assert (sync.kind, sync.orm, sync.threads) == ("baseline", True, True)
    assert [v.name for v in variants.VARIANTS.values() if v.threads] == ["sync_threadpool"]
    assert {v.name for v in variants.VARIANTS.values() if not v.orm} == {"core", "raw"}


@pytest.mark.parametrize("name", NEW)
def test_serves_the_contract(name: str, serve, db) -> None:
    server = serve(name)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        failures = [o for o in (run_check(c, Context(client, db)) for c in CHECKS) if not o.ok]
    assert not failures, [f"{o.label}: {o.error}" for o in failures]
    assert server.alive(), server.log_tail()


@pytest.mark.slow
def test_threadpool_tokens_are_recorded_next_to_the_pool_size(db, tmp_path: Path) -> None:
    assert environments.threadpool_tokens(variants.get("sync_threadpool")) == 40  # anyio default
    out = tmp_path / "run"
    result = cli(
        "run", "--variants", "sync_threadpool", "--scenarios", "read", "--users", "2",
        "--trials", "1", "--duration", "0.5", "--warmup", "0.2", "--out", str(out),
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    doc = json.loads((out / "run.json").read_text())
    info = doc["variants"]["sync_threadpool"]
    assert (info["pool_size"], info["threadpool_tokens"]) == (10, 40), result.stdout
    assert "threadpool_tokens" not in doc["variants"].get("depends", {})
    assert result.returncode == 0, result.stdout + result.stderr


def test_asyncio_pool_queues_are_refused_for_the_sync_variant(db, tmp_path: Path) -> None:
    out = tmp_path / "refused"
    result = cli(
        "run", "--no-co", "--quick", "--variants", "sync_threadpool,depends",
        "--pool-queue", "fifo", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "sync_threadpool" in lines[0] and "fifo" in lines[0], lines
    assert not out.exists()
    env = {**os.environ, "DATABASE_URL": db.url, "SESSIONBENCH_POOL_QUEUE": "hybrid"}
    imported = subprocess.run(
        [sys.executable, "-c", "import variants.sync_threadpool"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert imported.returncode != 0
    assert "SESSIONBENCH_POOL_QUEUE='hybrid'" in imported.stderr.splitlines()[-1]


def test_scorecard_calls_the_threadpool_a_reference_not_a_ceiling() -> None:
    from bench.report.scorecard import Score, advice

    assert advice(Score("sync_threadpool", "baseline")).startswith("reference: the sync Session")
    assert advice(Score("raw", "baseline")).startswith("a ceiling")


SLOW = 1.0
"""s a slowed COMMIT takes: a deferred constraint trigger sleeps at COMMIT for the rows below."""
SLOW_TITLES = "NEW.title = 'visible' OR NEW.title LIKE 'slow-commit%'"  # 'visible': verify's
SLOW_COMMIT = [
    "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql"
    f" AS $$ BEGIN PERFORM pg_sleep({SLOW}); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON todos"
    f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({SLOW_TITLES})"
    " EXECUTE FUNCTION slow_commit()",
]
SLOW_COMMIT_DROP = "DROP FUNCTION IF EXISTS slow_commit() CASCADE"


@pytest.fixture
def slow_commit(db: DatabaseUrl) -> Iterator[None]:
    """While the test runs, a COMMIT of a row titled ``visible`` or ``slow-commit…`` takes
    ``SLOW`` s longer (this worker's own PostgreSQL; other rows are not slowed)."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(SLOW_COMMIT_DROP)
        for statement in SLOW_COMMIT:
            conn.execute(statement)
        try:
            yield
        finally:
            conn.execute(SLOW_COMMIT_DROP)


def test_the_commit_after_yield_pair_is_registered() -> None:
    plain, function = variants.get("depends_commit"), variants.get("depends_commit_function")
    assert (plain.kind, function.kind) == ("strategy", "strategy")
    flagged = {v.name for v in variants.VARIANTS.values() if v.commits_after_response}
    assert flagged == {"depends_commit"}


@pytest.mark.parametrize(
    ("name", "answered_first"),
    [("depends_commit", True), ("depends_commit_function", False), ("depends", False)],
)
def test_a_write_is_answered_before_its_commit_only_by_the_request_scoped_commit(
    name: str,
    answered_first: bool,
    slow_commit: None,
    serve: Callable[[str], VariantServer],
    db: DatabaseUrl,
) -> None:
    """POST, then GET at once on the same connection: request scope answers 201 while the
    slowed COMMIT still runs (the GET misses the row until it ends), function scope and
    ``depends`` (handlers commit) answer once it has ended."""
    server = serve(name)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        started = time.monotonic()
        created = client.post("/todos", json={"title": f"slow-commit {name}"})
        answered = time.monotonic() - started
        assert created.status_code == 201, created.text
        read = client.get(f"/todos/{created.json()['id']}").status_code
        while read != 200 and time.monotonic() - started < SLOW + 10:
            read = client.get(f"/todos/{created.json()['id']}").status_code
        visible = time.monotonic() - started
        if answered_first:
            assert answered < SLOW <= visible, (answered, visible)
        else:
            assert SLOW <= answered <= visible, (answered, visible)
        # verify's own check fails exactly then: its GET after POST finds no row yet
        outcome = run_check(read_your_write, Context(client, db))
    assert read == 200
    assert outcome.ok is not answered_first, outcome
    if answered_first:
        assert (outcome.error or "").startswith("GET after POST: expected 200, got 404")
