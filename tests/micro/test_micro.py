"""`sessionbench micro` writes pytest-benchmark's own JSON, per operation, that compare reads."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "bench.cli"]
# One run for both tests: two lifecycle benchmarks and one request-write benchmark.
SELECT = "(lifecycle and (context or bare)) or (test_request and write and depends-)"


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory: pytest.TempPathFactory, db) -> Path:
    out = tmp_path_factory.mktemp("micro") / "micro"
    result = subprocess.run(
        [*CLI, "micro", "--quick", "--out", str(out), "-k", SELECT],
        capture_output=True, text=True, timeout=150, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


def benchmarks(out: Path) -> dict[str, dict[str, Any]]:
    return {b["param"]: b for b in json.loads((out / "micro.json").read_text())["benchmarks"]}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_micro_writes_per_op_json_that_pytest_benchmark_compare_reads(micro_run: Path) -> None:
    out = micro_run
    found = benchmarks(out)
    assert set(found) == {"lifecycle-context", "lifecycle-bare", "depends-write"}  # -k selects
    lifecycle = {param: b for param, b in found.items() if b["group"] == "lifecycle"}
    assert set(lifecycle) == {"lifecycle-context", "lifecycle-bare"}
    for bench in lifecycle.values():
        assert bench["stats"]["rounds"] == 5
        assert bench["extra_info"]["ops_per_round"] == 1000
        # Per operation: a session open + close costs microseconds, not a batch's milliseconds.
        assert 1e-7 < bench["stats"]["median"] < 1e-3
    run = json.loads((out / "run.json").read_text())
    status = json.loads((out / "micro.json").read_text())["sessionbench"]
    assert status["status"] == "complete" and run["environment"]["packages"]["sqlalchemy"]
    assert "micro" not in run  # micro's status lives in its own file
    compare = subprocess.run(
        [str(Path(sys.executable).parent / "pytest-benchmark"), "compare", str(out / "micro.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert compare.returncode == 0 and "lifecycle-context" in compare.stdout, compare.stderr


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_request_write_is_timed_per_request_and_labelled_with_what_it_measures(
    micro_run: Path,
) -> None:
    """A write cycle is three requests: the JSON is per request, and says it includes PostgreSQL."""
    from bench.micro import GROUPS

    bench = benchmarks(micro_run)["depends-write"]
    assert bench["group"] == "request-write"
    assert bench["extra_info"]["requests_per_call"] == 3
    assert bench["extra_info"]["ops_per_round"] == 3 * 30  # the timer divides by requests
    assert bench["extra_info"]["label"].endswith("per request")
    assert "PostgreSQL" in GROUPS["request-*"] and "/ 3" in GROUPS["request-*"]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_full_run_times_each_benchmark_in_conftests_rounds_after_one_warm_up_batch(
    tmp_path: Path, db: Any
) -> None:
    """Without --quick every benchmark has ROUNDS rounds (the reference's micro step)."""
    from bench.micro.conftest import QUICK_ROUNDS, ROUNDS

    out = tmp_path / "micro"
    result = subprocess.run(
        [*CLI, "micro", "--out", str(out), "-k", "registry_hit and is_active"],
        capture_output=True, text=True, timeout=150, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (bench,) = benchmarks(out).values()
    assert bench["stats"]["rounds"] == ROUNDS > QUICK_ROUNDS
    assert len(bench["stats"]["data"]) == ROUNDS  # the warm-up batch is not a round
