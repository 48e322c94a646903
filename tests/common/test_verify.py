"""``verify`` must fail, naming the check, when a server breaks the contract."""

import subprocess
import sys
import time

import httpx
import pytest

from bench.common.server import free_port
from bench.common.verify import CheckFailed, Context
from variants.settings import DatabaseUrl


@pytest.fixture
def broken_server(db: DatabaseUrl):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.common.broken_app:app", "--port", str(port),
         "--log-level", "warning"],
        env={**__import__("os").environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_verify_names_the_failing_checks(broken_server: str, db: DatabaseUrl) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.cli", "verify", "--url", broken_server],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 1
    failed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAIL")}
    assert {"create", "delete"} <= failed, result.stdout
    assert "PASS  health" in result.stdout
    assert result.stdout.strip().endswith("failed")


def test_unchanged_detects_a_write_on_the_database(serve, db: DatabaseUrl) -> None:
    with httpx.Client(base_url=serve("depends").base_url) as client:
        ctx = Context(client, db)
        with pytest.raises(CheckFailed, match="database changed"), ctx.unchanged():
            client.post("/todos", json={"title": "sneaky"})


def test_unchanged_without_database_detects_a_write_through_the_api(serve) -> None:
    with httpx.Client(base_url=serve("depends").base_url) as client:
        ctx = Context(client, None)
        with pytest.raises(CheckFailed, match="was written"), ctx.unchanged():
            client.post("/todos", json={"title": "sneaky"})
