"""Locust's distributed mode: a master in the runner, `sessionbench worker`s beside it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.common.server import free_port
from bench.load.distributed import DEFAULT_PORT, parse_master

CLI = [sys.executable, "-m", "bench.cli"]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", DEFAULT_PORT)),
        ("10.0.0.2:6000", ("10.0.0.2", 6000)),
        ("[::1]:6001", ("::1", 6001)),
        ("load-master", ("load-master", DEFAULT_PORT)),
    ],
)
def test_master_addresses_parse(value: str, parsed: tuple[str, int]) -> None:
    assert parse_master(value) == parsed


@pytest.mark.parametrize("value", [":5557", "host:0", "host:port", "host:70000"])
def test_bad_master_addresses_are_usage_errors(value: str) -> None:
    with pytest.raises(ValueError):
        parse_master(value)
    result = subprocess.run([*CLI, "worker", "--master", value], capture_output=True, text=True)
    assert result.returncode == 2 and "--master" in result.stderr


def test_workers_and_local_processes_exclude_each_other(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "run", "--expect-workers", "2", "--locust-processes", "2",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "--expect-workers" in result.stdout + result.stderr
    assert not (tmp_path / "run").exists()


def _start_worker(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*CLI, "worker", "--master", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def _stop_worker(worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """This worker and its locust child only, by PID."""
    if worker.poll() is None:
        children = psutil.Process(worker.pid).children(recursive=True)
        worker.send_signal(sig)
        if sig == signal.SIGKILL:
            for child in children:
                child.kill()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        psutil.wait_procs(children, timeout=10)


def _run(out: Path, port: int, db, duration: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "run", "--variants", "context", "--scenarios", "read", "--users", "16",
         "--trials", "1", "--duration", duration, "--expect-workers", "2",
         "--master-port", str(port), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_workers_load_one_cell_and_the_master_merges_both(tmp_path: Path, db) -> None:
    port = free_port()
    workers = [_start_worker(port, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        runner = _run(tmp_path / "run", port, db, "3")
        stdout, stderr = runner.communicate(timeout=200)
        assert runner.returncode == 0, stderr + stdout
        for worker in workers:  # served the cell, and still up for the next one
            assert worker.poll() is None
    finally:
        for worker in workers:
            _stop_worker(worker)
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    assert doc["settings"]["expect_workers"] == 2
    [cell] = doc["cells"]
    assert cell["workers_contributed"] == 2
    assert cell["worker_hosts"] == [socket.gethostname()] * 2
    assert any("locust master on 127.0.0.1" in n for n in doc["environment"]["placement"]["notes"])
    assert all(c["ok"] for c in cell["integrity"]), cell["integrity"]
    assert not any("worker" in r or "processes" in r for r in cell["reasons"]), cell["reasons"]
    assert all("busy" in r or "locust" in r for r in cell["reasons"]), cell["reasons"]
    [raw] = (tmp_path / "run" / "raw").iterdir()
    result = json.loads((raw / "result.json").read_text())
    assert result["processes"] == 3 and len(set(result["pids"])) == 3
    # 16 users, split over the two workers: every one of them sent its count to the master
    assert len(result["per_user"]) == 16 and min(result["per_user"]) > 0
    assert cell["requests"] == sum(result["per_user"]) > 0
    assert cell["fairness"]["jain"] > 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_worker_lost_mid_cell_invalidates_the_cell_with_the_reason(
    tmp_path: Path, db, monkeypatch
) -> None:
    """A worker killed 2 s after the cell started, inside its 5 s window (after the warm-up,
    3 s before the window ends). The master waits for the lost worker's results until
    SESSIONBENCH_RESULT_TIMEOUT: 3 s here (15 s by default) is ample for the survivor, whose
    result arrives before it reports stopping; the lost one's never comes."""
    monkeypatch.setenv("SESSIONBENCH_RESULT_TIMEOUT", "3")
    port = free_port()
    workers = [_start_worker(port, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        runner = _run(tmp_path / "run", port, db, "5")
        start = tmp_path / "run" / "raw"
        deadline = time.time() + 120
        while not list(start.glob("*/start.json")) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # inside the window
        _stop_worker(workers[1], signal.SIGKILL)
        stdout, stderr = runner.communicate(timeout=200)
    finally:
        for worker in workers:
            _stop_worker(worker)
    assert runner.returncode == 0, stderr + stdout
    [cell] = json.loads((tmp_path / "run" / "run.json").read_text())["cells"]
    assert cell["status"] == "invalid"
    assert cell["workers_contributed"] == 1
    assert any("1 of 2 locust workers" in r for r in cell["reasons"]), cell["reasons"]


@pytest.mark.timeout(60)
def test_missing_workers_end_the_run_with_a_clear_error(tmp_path: Path, db, monkeypatch) -> None:
    monkeypatch.setenv("SESSIONBENCH_WORKER_WAIT", "3")
    runner = _run(tmp_path / "run", free_port(), db, "1")
    stdout, stderr = runner.communicate(timeout=50)
    assert runner.returncode == 2
    assert "fewer than 2 locust workers connected" in stdout + stderr
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    assert doc["status"] == "failed" and "workers" in doc["error"]
