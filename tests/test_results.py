"""run.json: rounding, atomic saves, summaries."""

import json
from pathlib import Path

from bench.results import SCHEMA, Run, group_summary, rounded


def test_floats_are_rounded_to_significant_digits() -> None:
    assert rounded(1234.5678) == 1235.0
    assert rounded(0.000123456) == 0.0001235
    assert rounded({"a": [1.23456, 7], "b": "x"}) == {"a": [1.235, 7], "b": "x"}
    assert rounded(0.0) == 0.0


def test_run_is_saved_after_each_cell_and_marked(tmp_path: Path) -> None:
    run = Run.create(tmp_path / "r", settings={"trials": 1}, env={"python": "3"})
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "running"
    run.add_cell({"variant": "raw", "rps": 1000.123456})
    saved = Run.load(tmp_path / "r")
    assert saved.doc["schema"] == SCHEMA and saved.cells[0]["rps"] == 1000.0
    run.finish("incomplete")
    assert Run.load(tmp_path / "r").doc["status"] == "incomplete"
    assert not list((tmp_path / "r").glob("*.tmp"))


def cell(variant: str, rps: float, status: str = "ok") -> dict[str, object]:
    return {
        "variant": variant, "scenario": "read", "users": 8, "status": status, "rps": rps,
        "reasons": [] if status == "ok" else ["bad"], "cpu_us_per_request": {"server": 1e6 / rps},
        "latency_us": {"p50": 1000, "p99": 5000},
    }  # fmt: skip


def test_summary_uses_valid_trials_only() -> None:
    rows = group_summary(
        [cell("a", 100), cell("a", 110), cell("a", 120), cell("a", 9999, "invalid")]
    )
    (row,) = rows
    assert row["rps"] == 110 and row["valid"] == 3 and row["trials"] == 4
    assert row["reasons"] == ["bad"]
    assert 8 < row["rps_cv"] < 10
