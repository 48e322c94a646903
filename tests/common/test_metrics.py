"""`serve --metrics` exports server CPU; `run --remote` measures servers it did not start."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.common import metrics
from bench.common.server import free_port

CLI = [sys.executable, "-m", "bench.cli"]


def _serve(
    port: int, log: Path, db, *extra: str, variant: str = "context"
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*CLI, "serve", variant, "--port", str(port), *extra],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "DATABASE_URL": db.url},
        )  # fmt: skip
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(log.read_text())


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def test_remote_specs_parse_and_bad_ones_are_usage_errors(tmp_path: Path) -> None:
    assert metrics.parse_remote("context=http://h:8000,raw=http://h:8002") == {
        "context": "http://h:8000", "raw": "http://h:8002",
    }  # fmt: skip
    assert metrics.metrics_url("http://10.0.0.2:8000") == "http://10.0.0.2:8001/metrics"
    for bad in ("context", "context=h:8000", "context=http://h", "nosuch=http://h:1"):
        result = subprocess.run(
            [*CLI, "run", "--remote", bad, "--out", str(tmp_path / "r")],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 2 and "--remote" in result.stderr, bad


def test_remote_needs_the_database_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [*CLI, "run", "--remote", "context=http://127.0.0.1:1", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 2 and "DATABASE_URL" in result.stdout + result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_remote_servers_are_measured_through_their_metrics_or_said_not_to_be(
    tmp_path: Path, db
) -> None:
    """One run of two servers it did not start: context exports its CPU (``--metrics``),
    depends does not."""
    ports = {"context": free_port()}
    exported = _serve(ports["context"], tmp_path / "context.log", db, "--metrics")
    try:  # a free port now is none of context's two
        ports["depends"] = free_port()
        plain = _serve(ports["depends"], tmp_path / "depends.log", db, variant="depends")
    except BaseException:
        _stop(exported)
        raise
    try:
        first = metrics.read_cpu(f"http://127.0.0.1:{ports['context'] + 1}/metrics")
        assert first is not None and first > 0
        remote = ",".join(f"{name}=http://127.0.0.1:{port}" for name, port in ports.items())
        result = subprocess.run(
            [*CLI, "run", "--remote", remote, "--scenarios", "write",
             "--users", "4", "--trials", "1", "--duration", "1", "--warmup", "0.5",
             "--out", str(tmp_path / "run")],
            capture_output=True, text=True, timeout=150,
            env={**os.environ, "DATABASE_URL": db.url},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        # measured, not stopped: they are not the runner's
        assert exported.poll() is None and plain.poll() is None
    finally:
        _stop(exported)
        _stop(plain)
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    cells = {c["variant"]: c for c in doc["cells"]}
    assert set(cells) == set(ports)
    for name, cell in cells.items():
        assert doc["variants"][name]["verify"]["passed"]
        assert all(c["ok"] for c in cell["integrity"]), cell["integrity"]
        peak = next(c for c in cell["integrity"] if c["name"] == "connections_within_pool")
        assert "(peak 0" not in peak["detail"]  # its connections were seen by application_name
    assert cells["context"]["server_cpu"] == "remote /metrics"
    assert cells["context"]["cpu_us_per_request"]["server"] > 0
    depends = cells["depends"]
    assert depends["server_cpu"].startswith("not measured")
    assert "server" not in depends["cpu_us_per_request"]
    assert any("server CPU not measured" in w for w in depends["warnings"])
    assert "server CPU not measured" in result.stdout + result.stderr  # the summary says so
    assert not any("server CPU not measured" in w for w in cells["context"].get("warnings", []))
