"""The command line: listing, usage errors (one line, exit 2), and serve's clean shutdown."""

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

import variants
from bench.common.server import free_port

CLI = [sys.executable, "-m", "bench.cli"]


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload]


def test_variants_prints_one_name_per_line() -> None:
    result = run("variants")
    assert result.returncode == 0
    assert result.stdout.split() == list(variants.VARIANTS)


def test_help_on_every_subcommand() -> None:
    for command in ("variants", "db", "serve", "verify", "run"):
        result = run(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout, command


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["serve", "nope"], "'nope'"),
        (["serve", "scoped", "--port", "70000"], "70000"),
        (["serve", "scoped", "--port", "http"], "'http'"),
        (["verify", "scoped", "bogus"], "'bogus'"),
        (["frobnicate"], "frobnicate"),
        (["run", "--users", "0"], "'0'"),
        (["run", "--users", "8,x"], "'x'"),
        (["run", "--variants", "scoped,nope"], "'nope'"),
        (["run", "--scenarios", "read,slow"], "'slow'"),
        (["run", "--duration", "-1"], "'-1'"),
        (["run", "--trials", "0"], "'0'"),
        (["run", "--quick", "--full"], "--full"),
        (["run", "--pool-size", "10,0"], "'0'"),
        (["run", "--workers", "two"], "'two'"),
        (["run", "--server", "uvicorn,hypercorn"], "'hypercorn'"),
        (["run", "--locust-processes", "0"], "'0'"),
        (["serve", "scoped", "--server", "daphne"], "'daphne'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], named: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "error" in lines[0], result.stderr


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_without_database_url_answers_then_leaves_nothing_behind(sig: signal.Signals) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen([*CLI, "serve", "scoped", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "not ready within 15 s"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/todos/1", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert response.status_code == 200 and response.json()["title"] == "todo 1"
        children = _descendants(proc.pid)
        assert any(c.name() == "postgres" for c in children)
        proc.send_signal(sig)
        assert proc.wait(20) == 0, proc.communicate()
        psutil.wait_procs(children, timeout=10)
        assert not [c for c in children if c.is_running() and c.status() != "zombie"]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_database_url_is_one_line_exit_2_and_creates_nothing(tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": "mysql://me@db/x"}
    for args in (["serve", "raw"], ["run", "--out", str(tmp_path / "run")], ["verify", "raw"]):
        result = run(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert (
            result.stderr.strip().splitlines()[-1].startswith("sessionbench: error: DATABASE_URL")
        )
    assert not (tmp_path / "run").exists()


def test_unreachable_database_fails_the_run_and_says_so(tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": f"postgresql://me@127.0.0.1:{free_port()}/x"}
    result = run("run", "--out", str(tmp_path / "run"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("sessionbench: error: cannot connect")
    doc = __import__("json").loads((tmp_path / "run" / "run.json").read_text())
    assert doc["status"] == "failed" and "cannot connect" in doc["error"]
