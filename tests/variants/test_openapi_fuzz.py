"""An OpenAPI fuzzer (schemathesis) against every variant of the main environment, over HTTP.

Each variant is served for real (``VariantServer``, a ``sessionbench serve`` child) on an
embedded PostgreSQL of this module's own, so the fuzzer's writes and deletes never touch the
seed other tests read. ``schemathesis run`` generates, with a fixed seed and at most
``EXAMPLES`` requests per operation and phase, examples, coverage cases (boundaries, wrong
types, malformed bodies, unsupported methods) and fuzzed requests, and applies every check:
no server error, no response that contradicts the schema (status, headers, content type,
body, ``Allow``), no schema-valid request rejected, no schema-invalid request accepted.

Its command line is used rather than its pytest plugin: the plugin's lazy fixture loading
sets ``Function._nodeid``, which pytest 9.2 no longer has. ``fastapi_sqla`` lives in its
own venv (``variants/envs/fastapi_sqla.txt``) without schemathesis and is left out here;
``sessionbench verify`` checks its contract.
"""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import variants
from bench.common import database
from bench.common.server import VariantServer
from variants.settings import DatabaseUrl

SEED = 20261128
EXAMPLES = 20
PHASES = "examples,coverage,fuzzing"
MAIN_ENVIRONMENT = [v.name for v in variants.VARIANTS.values() if v.environment is None]

pytestmark = pytest.mark.slow  # a server and a fuzzer process per variant


@pytest.fixture(scope="module")
def fuzz_db() -> Iterator[DatabaseUrl]:
    with database.EmbeddedPostgres() as pg:
        asyncio.run(database.ensure_schema(pg.url, rows=200))
        yield pg.url


def schemathesis(base_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run the fuzzer; its cache (``.schemathesis/``) goes to *workdir*, not the checkout."""
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
        "--seed", str(SEED), "--max-examples", str(EXAMPLES), "--phases", PHASES,
        "--checks", "all", "--no-shrink",
        "--request-timeout", "10", "--workers", "1", "--output-truncate", "false",
    ]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, cwd=workdir
    )


@pytest.mark.parametrize("name", MAIN_ENVIRONMENT)
def test_the_schema_describes_what_the_server_answers(
    name: str, fuzz_db: DatabaseUrl, tmp_path: Path
) -> None:
    with VariantServer(name, fuzz_db, log_path=tmp_path / "server.log") as server:
        found = schemathesis(server.base_url, tmp_path)
        alive = server.alive()
    report = found.stdout[-6000:] + found.stderr[-2000:]
    assert alive, f"{name} died under fuzzing:\n{report}"
    assert found.returncode == 0, f"schemathesis on {name}:\n{report}"
    assert "No issues found" in found.stdout, report
