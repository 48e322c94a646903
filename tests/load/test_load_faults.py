"""The load runner against deliberately broken apps: what the cell must say about them.

The apps (``tests/load/lossy_app.py``) are served by the real runner, in this process, as
an extra registered variant; only the server command and ``verify`` are swapped (verify
would rightly refuse them).
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import variants
from bench.common import verify
from bench.common.server import ServerError, VariantServer
from bench.load.runner import Placement, RunConfig, Runner, Series
from variants.settings import DatabaseUrl


class AppServer(VariantServer):
    """A VariantServer running uvicorn on a test app instead of ``sessionbench serve``."""

    app_path = ""

    def start(self, timeout: float = 30.0) -> None:
        env = {
            **os.environ, "SESSIONBENCH_APP_NAME": self.app_name, **self.env,
            "DATABASE_URL": self.url.url,
        }  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", self.app_path, "--port", str(self.port),
                 "--no-access-log", "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if not self.alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"test app did not start:\n{self.log_tail()}")
            time.sleep(0.05)


def run_app(
    app_path: str,
    scenario: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    trials: int = 1,
    runner: type[Runner] = Runner,
    progress: list[str] | None = None,
) -> list[dict[str, Any]]:
    """*trials* cells of *scenario* against the app at *app_path* (a *runner* subclass may
    add to each cell); returns the cells."""
    name = "faulty"
    module = app_path.split(":")[0]
    monkeypatch.setitem(variants.VARIANTS, name, variants.Variant(name, module, "strategy"))
    monkeypatch.setattr(verify, "verify", lambda *args, **kwargs: [])

    class FaultyRunner(runner):  # type: ignore[valid-type,misc]
        def _server(self, series: Series, url: DatabaseUrl, placement: Placement) -> VariantServer:
            server = AppServer(
                name, url, log_path=self.config.out / "server.log",
                env={"SESSIONBENCH_POOL_SIZE": str(series.pool_size)},
            )  # fmt: skip
            server.app_path = app_path
            return server

    config = RunConfig(
        mode="quick", variants=[name], scenarios=[scenario], users=[4], trials=trials,
        duration=1.5, warmup=1.0, pool_sizes=[10], max_overflow=0, out=tmp_path / "run",
    )  # fmt: skip
    affinity = os.sched_getaffinity(0)
    try:
        shown = progress if progress is not None else []
        run = FaultyRunner(config, progress=lambda text, *args: shown.append(text)).run()
    finally:
        os.sched_setaffinity(0, affinity)  # the runner pins its own process
    assert run.doc["status"] == "complete", run.doc
    assert len(run.cells) == trials
    return run.cells


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_acknowledged_patch_that_was_rolled_back_invalidates_the_cell(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [cell] = run_app("tests.load.lossy_app:app", "write", tmp_path, monkeypatch)
    failing = {c["name"]: c["detail"] for c in cell["integrity"] if not c["ok"]}
    # the rows and the statements look right (the UPDATE was sent): only this check sees it
    assert "acknowledged_updates" in failing and "acknowledged_writes" not in failing, failing
    assert failing["acknowledged_updates"].startswith("0 of ")
    assert cell["status"] == "invalid"
    assert any("acknowledged_updates" in r for r in cell["reasons"])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_failures_in_the_warmup_invalidate_the_cell(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [cell] = run_app("tests.load.lossy_app:flaky_start_app", "read", tmp_path, monkeypatch)
    phases = cell["failures_by_phase"]
    assert sum(phases["warmup"].values()) == 30 and not phases["window"] and not phases["stop"]
    assert cell["errors"] == 0  # nothing failed inside the window ...
    assert cell["status"] == "invalid"  # ... but the cell cannot be trusted
    assert any("in the warmup phase" in r for r in cell["reasons"]), cell["reasons"]


HOLD_TRANSACTION = """
import asyncio, sys
import asyncpg

async def main():
    conn = await asyncpg.connect(sys.argv[1], server_settings={"application_name": sys.argv[2]})
    await conn.execute("BEGIN; LOCK TABLE todos IN ACCESS SHARE MODE")
    print("ready", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_server_that_leaves_transactions_open_is_restarted_before_the_next_cell(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's first request leaves a transaction idle (todos locked) in the server; a
    process of its own (same application_name, so the server's restart cannot end it)
    holds another. Without the runner's clean-up the next cell's reset would wait on them."""
    monkeypatch.setenv("STALL_MARKER", str(tmp_path / "stalled"))
    holders: list[subprocess.Popen[str]] = []

    class HoldingRunner(Runner):
        def _cell(self, index: int, name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            cell = super()._cell(index, name, *args, **kwargs)
            if index == 0:
                holder = subprocess.Popen(
                    [sys.executable, "-c", HOLD_TRANSACTION, db.asyncpg,
                     self.servers[name].app_name],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                holders.append(holder)
                assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            return cell

    shown: list[str] = []
    try:
        first, second = run_app(
            "tests.load.lossy_app:stall_once_app", "write", tmp_path, monkeypatch,
            trials=2, runner=HoldingRunner, progress=shown,
        )  # fmt: skip
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    lingering = first["lingering_transactions"]
    assert lingering["count"] == 2 and lingering["restarted"], lingering
    assert lingering["states"] == {"idle in transaction": 2} and lingering["max_age_s"] >= 0
    assert lingering["terminated"] == 1  # the server's own one ended with its process
    assert first["status"] == "invalid"
    assert first["reasons"][0].startswith("server restarted: left 2 transactions open")
    assert any("after faulty: server restarted: left 2 transactions open" in s for s in shown)
    assert "lingering_transactions" not in second
    assert second["requests"] > 0 and all(c["ok"] for c in second["integrity"]), second
    assert all("busy" in r or "locust" in r for r in second["reasons"]), second["reasons"]
