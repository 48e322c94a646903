"""The load runner against deliberately broken apps: what the cell must say about them.

The apps (``tests/lossy_app.py``) are served by the real runner, in this process, as
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
    app_path: str, scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """One cell of *scenario* against the app at *app_path*; returns the cell."""
    name = "faulty"
    module = app_path.split(":")[0]
    monkeypatch.setitem(variants.VARIANTS, name, variants.Variant(name, module, "strategy"))
    monkeypatch.setattr(verify, "verify", lambda *args, **kwargs: [])

    class FaultyRunner(Runner):
        def _server(self, series: Series, url: DatabaseUrl, placement: Placement) -> VariantServer:
            server = AppServer(
                name, url, log_path=self.config.out / "server.log",
                env={"SESSIONBENCH_POOL_SIZE": str(series.pool_size)},
            )  # fmt: skip
            server.app_path = app_path
            return server

    config = RunConfig(
        mode="quick", variants=[name], scenarios=[scenario], users=[4], trials=1,
        duration=1.5, warmup=1.0, pool_sizes=[10], max_overflow=0, out=tmp_path / "run",
    )  # fmt: skip
    affinity = os.sched_getaffinity(0)
    try:
        run = FaultyRunner(config, progress=lambda *args: None).run()
    finally:
        os.sched_setaffinity(0, affinity)  # the runner pins its own process
    assert run.doc["status"] == "complete", run.doc
    [cell] = run.cells
    return cell


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_acknowledged_patch_that_was_rolled_back_invalidates_the_cell(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell = run_app("tests.lossy_app:app", "write", tmp_path, monkeypatch)
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
    cell = run_app("tests.lossy_app:flaky_start_app", "read", tmp_path, monkeypatch)
    phases = cell["failures_by_phase"]
    assert sum(phases["warmup"].values()) == 30 and not phases["window"] and not phases["stop"]
    assert cell["errors"] == 0  # nothing failed inside the window ...
    assert cell["status"] == "invalid"  # ... but the cell cannot be trusted
    assert any("in the warmup phase" in r for r in cell["reasons"]), cell["reasons"]
