"""Four hosts on one machine: network namespaces for the database, server, load and runner.

Layout (10.77.N.0/24 private, N from the test's PID; a bridge inside the runner's namespace,
so no packet crosses the root namespace):

    <tag>-db    eth0 10.77.N.1   sessionbench db --listen 10.77.N.1
    <tag>-srv   eth0 10.77.N.2   sessionbench serve context --metrics (8000, /metrics 8001)
    <tag>-load  eth0 10.77.N.3   two `sessionbench worker --master 10.77.N.4`
    <tag>-run   br0  10.77.N.4   sessionbench run --remote … --expect-workers 2 (locust master)

Everything created (processes by PID, then namespaces, which takes their links) is removed in
a ``finally``. Skipped with the reason where namespaces cannot be created.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "bench.cli"]
ROLES = ("db", "srv", "load", "run")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _can_create_namespaces(tag: str) -> str | None:
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    try:
        _ip("netns", "add", f"{tag}-probe")
        _ip("netns", "del", f"{tag}-probe")
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.strip()}"
    return None


def _in(ns: str, cmd: list[str], log: Path, env: dict[str, str] | None = None):
    with log.open("wb") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}, start_new_session=True,
        )  # fmt: skip


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(check, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not ready:\n{log.read_text()[-2000:]}")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_database_server_load_and_runner_on_four_hosts(tmp_path: Path) -> None:
    tag = f"sb{os.getpid() % 100000}"
    reason = _can_create_namespaces(tag)
    if reason:
        pytest.skip(reason)
    net = f"10.77.{os.getpid() % 250 + 1}"
    addr = {"db": f"{net}.1", "srv": f"{net}.2", "load": f"{net}.3", "run": f"{net}.4"}
    namespaces: list[str] = []
    started: list[subprocess.Popen] = []
    try:
        for role in ROLES:
            _ip("netns", "add", f"{tag}-{role}")
            namespaces.append(f"{tag}-{role}")
            _ip("-n", f"{tag}-{role}", "link", "set", "lo", "up")
        run_ns = f"{tag}-run"
        _ip("-n", run_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", run_ns, "addr", "add", f"{addr['run']}/24", "dev", "br0")
        _ip("-n", run_ns, "link", "set", "br0", "up")
        for role in ("db", "srv", "load"):
            ns, port = f"{tag}-{role}", f"p{role}"
            _ip("-n", run_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", run_ns, "link", "set", port, "master", "br0")
            _ip("-n", run_ns, "link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{addr[role]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

        db_log = tmp_path / "db.log"
        db = _in(f"{tag}-db", [*CLI, "db", "--listen", addr["db"]], db_log)
        started.append(db)
        _wait_for(lambda: "ready with the seed" in db_log.read_text(), "PostgreSQL", db_log)
        url = db_log.read_text().splitlines()[0].strip()
        assert url == f"postgresql://postgres@{addr['db']}:5432/postgres"

        srv_log = tmp_path / "serve.log"
        server = _in(
            f"{tag}-srv",
            [*CLI, "serve", "context", "--host", addr["srv"], "--port", "8000", "--metrics"],
            srv_log, {"DATABASE_URL": url},
        )  # fmt: skip
        started.append(server)

        def healthy() -> bool:
            probe = subprocess.run(
                ["ip", "netns", "exec", run_ns, sys.executable, "-c",
                 f"import httpx; print(httpx.get('http://{addr['srv']}:8000/health').status_code)"],
                capture_output=True, text=True,
            )  # fmt: skip
            return probe.stdout.strip() == "200"

        _wait_for(healthy, "server", srv_log)
        for i in range(2):
            started.append(
                _in(
                    f"{tag}-load",
                    [*CLI, "worker", "--master", f"{addr['run']}:5557"],
                    tmp_path / f"worker{i}.log",
                )
            )
        out = tmp_path / "run"
        runner = _in(
            run_ns,
            [*CLI, "run", "--remote", f"context=http://{addr['srv']}:8000", "--scenarios",
             "write", "--users", "8", "--trials", "1", "--duration", "2", "--warmup", "0.5",
             "--expect-workers", "2", "--master-bind", addr["run"], "--out", str(out)],
            tmp_path / "run.log", {"DATABASE_URL": url},
        )  # fmt: skip
        started.append(runner)
        runner.wait(300)
        assert runner.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
        doc = json.loads((out / "run.json").read_text())
        assert doc["variants"]["context"]["verify"]["passed"]
        [cell] = doc["cells"]
        assert all(c["ok"] for c in cell["integrity"]), cell["integrity"]
        assert cell["workers_contributed"] == 2
        [raw] = [p for p in (out / "raw").iterdir() if (p / "result.json").exists()]
        result = json.loads((raw / "result.json").read_text())
        assert len(result["per_user"]) == 8 and result["processes"] == 3
        assert cell["server_cpu"] == "remote /metrics"
        assert cell["cpu_us_per_request"]["server"] > 0
        assert all("busy" in r or "locust" in r for r in cell["reasons"]), cell["reasons"]
        # every namespace routes only its private subnet: no packet can leave them
        for ns in namespaces:
            routes = subprocess.run(["ip", "-n", ns, "route"], capture_output=True, text=True)
            assert [r.split()[0] for r in routes.stdout.splitlines()] == [f"{net}.0/24"], ns
    finally:
        for process in reversed(started):
            _stop(process)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert not [ns for ns in namespaces if ns in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout]  # fmt: skip
