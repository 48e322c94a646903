"""`sessionbench micro` writes pytest-benchmark's own JSON, per operation, that compare reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "bench.cli"]


@pytest.mark.timeout(180)
def test_micro_writes_per_op_json_that_pytest_benchmark_compare_reads(tmp_path: Path, db) -> None:
    out = tmp_path / "micro"
    env = {**os.environ, "DATABASE_URL": db.url}
    result = subprocess.run(
        [*CLI, "micro", "--quick", "--out", str(out), "-k", "lifecycle and (context or bare)"],
        capture_output=True, text=True, timeout=150, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads((out / "micro.json").read_text())
    benchmarks = {b["param"]: b for b in data["benchmarks"]}
    assert set(benchmarks) == {"lifecycle-context", "lifecycle-bare"}
    for bench in benchmarks.values():
        assert bench["group"] == "lifecycle" and bench["stats"]["rounds"] == 5
        assert bench["extra_info"]["ops_per_round"] == 1000
        # Per operation: a session open + close costs microseconds, not a batch's milliseconds.
        assert 1e-7 < bench["stats"]["median"] < 1e-3
    run = json.loads((out / "run.json").read_text())
    assert run["micro"]["status"] == "complete" and run["environment"]["packages"]["sqlalchemy"]
    compare = subprocess.run(
        [str(Path(sys.executable).parent / "pytest-benchmark"), "compare", str(out / "micro.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert compare.returncode == 0 and "lifecycle-context" in compare.stdout, compare.stderr


@pytest.mark.timeout(180)
def test_request_write_is_timed_per_request_and_labelled_with_what_it_measures(
    tmp_path: Path, db
) -> None:
    """A write cycle is three requests: the JSON is per request, and says it includes PostgreSQL."""
    from bench.micro import GROUPS

    out = tmp_path / "micro"
    result = subprocess.run(
        [*CLI, "micro", "--quick", "--out", str(out), "-k", "test_request and write and depends-"],
        capture_output=True, text=True, timeout=150, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (bench,) = json.loads((out / "micro.json").read_text())["benchmarks"]
    assert bench["group"] == "request-write" and bench["param"] == "depends-write"
    assert bench["extra_info"]["requests_per_call"] == 3
    assert bench["extra_info"]["ops_per_round"] == 3 * 30  # the timer divides by requests
    assert bench["extra_info"]["label"].endswith("per request")
    assert "PostgreSQL" in GROUPS["request-*"] and "/ 3" in GROUPS["request-*"]
