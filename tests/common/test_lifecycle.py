"""One run's life (bench/common/lifecycle.py): a signal keeps what was saved and marks the run,
a finished run records its status, time and commit, a failure says why and is raised."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bench.common.lifecycle import RunLifecycle, stopping
from bench.common.results import ROOT, Run

CELL = {"variant": "raw", "scenario": "read", "users": 2, "trial": 1, "status": "invalid",
        "reasons": ["a cell saved before the signal"]}  # fmt: skip


class Boom(Exception):
    pass


def doc(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "run.json").read_text())
    return loaded


def interrupt(sig: signal.Signals) -> None:
    """Deliver *sig* to this process and wait for its handler (which must raise)."""
    os.kill(os.getpid(), sig)
    time.sleep(5)
    pytest.fail(f"{sig.name} did not interrupt the run")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_keeps_the_saved_cells_and_marks_the_run_incomplete(
    sig: signal.Signals, tmp_path: Path
) -> None:
    before = signal.getsignal(sig)
    folder = tmp_path / "run"
    during_cleanup: list[Any] = []
    with RunLifecycle(Run, folder, settings={"mode": "test"}) as life:
        assert doc(folder)["status"] == "running"  # created on entering
        with stopping(lambda: during_cleanup.append(signal.getsignal(sig))):
            life.run.add_cell(CELL)
            life.status = "complete"  # even a status already set: the signal came after
            interrupt(sig)
    found = doc(folder)
    assert found["status"] == "incomplete" and found["interrupted_by"] == sig.name
    assert found["cells"] == [CELL] and found["finished"] is not None
    assert during_cleanup == [signal.SIG_IGN]  # the children are stopped with signals ignored
    assert signal.getsignal(sig) is before  # the previous handler is back


def test_a_second_signal_does_not_cut_the_cleanup_short(tmp_path: Path) -> None:
    stopped: list[str] = []

    def cleanup() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # a handler that raised would have raised by now
        stopped.append("children")

    with RunLifecycle(Run, tmp_path / "run", settings={}) as life, stopping(cleanup):
        life.status = "complete"
    assert stopped == ["children"]
    assert doc(tmp_path / "run")["status"] == "complete"


def test_a_finished_run_records_status_finished_time_and_its_commit(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    lifecycle = RunLifecycle(
        Run, folder, settings={"mode": "test"}, env={"valgrind": "valgrind-3.22.0"},
        fields={"scenarios": {"fanout": "fan-out"}}, program="sessionbench",
    )  # fmt: skip
    with lifecycle as life:
        life.run.add_cell(CELL)
        life.status = "partial"
    found = doc(folder)
    assert found["status"] == "partial" and found["cells"] == [CELL]
    assert found["started"] <= found["finished"]  # ISO times, UTC: they sort as text
    assert "interrupted_by" not in found and "error" not in found
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    env = found["environment"]
    assert env["git_commit"] == commit and isinstance(env["git_dirty"], bool)
    assert env["valgrind"] == "valgrind-3.22.0" and env["cpu_model"]  # its own and the machine's
    assert found["scenarios"] == {"fanout": "fan-out"}
    assert found["command"][0] == "sessionbench"
    assert found["settings"] == {"mode": "test"}


def test_a_failure_it_names_marks_the_run_failed_and_is_raised(tmp_path: Path) -> None:
    with (
        pytest.raises(Boom, match="no database"),
        RunLifecycle(Run, tmp_path / "run", settings={}, fails_on=(Boom,)) as life,
    ):
        life.run.add_cell(CELL)
        raise Boom("no database")
    found = doc(tmp_path / "run")
    assert found["status"] == "failed" and found["error"] == "no database"
    assert found["cells"] == [CELL]


def test_any_other_exception_leaves_the_run_incomplete_and_is_raised(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGINT)
    with (
        pytest.raises(Boom),
        RunLifecycle(Run, tmp_path / "run", settings={}, fails_on=(KeyError,)),
    ):
        raise Boom("a bug")
    found = doc(tmp_path / "run")
    assert found["status"] == "incomplete" and "error" not in found
    assert signal.getsignal(signal.SIGINT) is previous
