"""The sqlmodel and sync_threadpool variants (issue 16): registered, serving the contract,
the threadpool's size recorded in run.json, and asyncio pool queues refused for the sync one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import variants
from bench.common import environments
from bench.common.verify import CHECKS, Context, run_check

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

    assert advice(Score("sync_threadpool", "baseline")).startswith("a reference, not a contender")
    assert advice(Score("raw", "baseline")).startswith("a ceiling")
