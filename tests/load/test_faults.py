"""Faults during a load run: the embedded PostgreSQL killed mid-run, an external one gone."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil
import pytest

from bench.common import database

CLI = [sys.executable, "-m", "bench.cli"]


def wait_for_cells(out: Path, proc: subprocess.Popen, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, f"{count} cells not finished in time"
        try:
            if len(json.loads((out / "run.json").read_text())["cells"]) >= count:
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_embedded_postmaster_fails_its_cell_and_the_run_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen(
        [*CLI, "run", "--variants", "raw", "--scenarios", "read", "--users", "2",
         "--trials", "4", "--duration", "2", "--warmup", "0.2", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        wait_for_cells(out, proc, 1, timeout=180)
        time.sleep(1.0)  # inside the second cell
        runner = psutil.Process(proc.pid)
        (postmaster,) = [p for p in runner.children() if p.name() == "postgres"]
        pgdata = postmaster.cmdline()[postmaster.cmdline().index("-D") + 1]
        postmaster.kill()
        code = proc.wait(240)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "complete" and len(doc["cells"]) == 4
    failed = [c for c in doc["cells"] if c["status"] == "failed"]
    assert len(failed) == 1, failed
    assert "embedded PostgreSQL died" in failed[0]["reasons"][0]
    assert failed[0]["order"] >= 1
    later = [c for c in doc["cells"] if c["order"] > failed[0]["order"]]
    assert later and all(c["status"] != "failed" and c["requests"] > 0 for c in later)
    assert [r["cell"] for r in doc["database_restarts"]] == [failed[0]["order"]]
    # Nothing left running: no server, locust or PostgreSQL (the restarted one included).
    time.sleep(1)
    left = [
        line for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE
        and (pgdata in (line := " ".join(p.info["cmdline"] or [])) or str(out) in line)
    ]  # fmt: skip
    assert not left, left
    assert not Path(pgdata).exists()


@pytest.mark.slow
def test_an_external_database_that_stays_down_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """The runner waits SESSIONBENCH_DATABASE_WAIT for an external database to come back (15 s
    by default): 2 s here, as this one never comes back; how long it waited is not checked."""
    out = tmp_path / "run"
    with database.EmbeddedPostgres() as pg:  # "external": the runner does not own it
        asyncio.run(database.ensure_schema(pg.url, rows=100))
        proc = subprocess.Popen(
            [*CLI, "run", "--variants", "raw", "--scenarios", "read", "--users", "2",
             "--trials", "3", "--duration", "1", "--warmup", "0.2", "--pool-size", "4",
             "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "DATABASE_URL": pg.url.url, "SESSIONBENCH_DATABASE_WAIT": "2"},
        )  # fmt: skip
        try:
            wait_for_cells(out, proc, 1, timeout=180)
            assert pg.process is not None
            pg.process.kill()
            pg.process.wait()
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
    stderr = (proc.stderr.read() if proc.stderr else "").strip()
    assert code == 1, stderr
    last = stderr.splitlines()[-1]  # the lines before it are the progress display
    assert "Traceback" not in stderr and last.startswith("sessionbench: error: "), stderr
    assert f"stays down: cannot connect to {pg.url.redacted}" in last
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "failed" and "stays down" in doc["error"]
    assert len(doc["cells"]) == 1


def test_only_a_lost_database_counts_as_lost(db) -> None:
    syntax = asyncpg.exceptions.PostgresSyntaxError("syntax error at or near")
    assert database.lost(ValueError("a bug"), db, None) is None
    assert database.lost(syntax, db, None) is None  # reachable, and not a connection error
    dropped = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    assert "connection to the database was lost" in (database.lost(dropped, db, None) or "")
    gone = database.DatabaseUrl("postgresql://postgres@/postgres?host=/nonexistent&port=5432")
    assert "the database went away (cannot connect" in (database.lost(dropped, gone, None) or "")
