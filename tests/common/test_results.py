"""run.json: rounding, atomic saves, summaries."""

import json
from pathlib import Path

import pytest

from bench.common.result_files import LoadCell
from bench.common.results import SCHEMA, Run, group_summary, percentile, rounded, tail_resolved


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


def cell(
    variant: str, rps: float, status: str = "ok", p99: float = 5000, **extra: object
) -> LoadCell:
    return LoadCell.model_validate({
        "variant": variant, "scenario": "read", "users": 8, "status": status, "rps": rps,
        "reasons": [] if status == "ok" else ["bad"], "cpu_us_per_request": {"server": 1e6 / rps},
        "latency_us": {"p50": 1000, "p99": p99}, **extra,
    })  # fmt: skip


def test_summary_uses_valid_trials_only() -> None:
    rows = group_summary(
        [cell("a", 100), cell("a", 110), cell("a", 120), cell("a", 9999, "invalid")]
    )
    (row,) = rows
    assert row.rps == 110 and row.valid == 3 and row.trials == 4
    assert row.reasons == ["bad"]
    assert 8 < row.rps_cv < 10


def test_one_p99_the_median_of_the_valid_trials_percentiles_with_its_interval() -> None:
    cells = [cell("a", 100, p99=p) for p in (9000, 3000, 5000, 4000, 310_000)]
    cells.append(cell("a", 100, "invalid", p99=10**7))
    assert percentile(cells, "p99") == (5000, 3000, 310_000)  # n = 5: [min, max], 93.75 %
    (row,) = group_summary(cells)
    assert row.p99_us == 5000 and row.p99_ci == (3000, 310_000)
    with pytest.raises(ValueError):
        percentile([cell("a", 1, "invalid")], "p99")


def test_summary_states_interval_coverage_and_what_the_trials_resolve() -> None:
    (row,) = group_summary([cell("a", r) for r in (1000, 1040, 960, 1010, 990)])
    assert row.rps_ci == (960, 1040) and row.ci_coverage == 0.9375
    assert 3 < row.resolves_percent < 10  # ±3 % trials: a comparison resolves ~5 %
    (same,) = group_summary([cell("a", 1000), cell("a", 1000)])
    assert same.resolves_percent is None  # no spread: nothing known about the noise


def test_a_groups_tail_is_resolved_only_if_every_trial_says_so() -> None:
    assert tail_resolved([cell("a", 1, tail_resolved=True)] * 3) is True
    assert (
        tail_resolved([cell("a", 1, tail_resolved=True), cell("a", 1, tail_resolved=False)])
        is False
    )
    assert tail_resolved([cell("a", 1)]) is None  # a run recorded before the field existed


def test_a_run_is_read_once_and_its_summaries_computed_once(tmp_path: Path) -> None:
    """The tables, figures, scorecard and questions of one report share one validated run
    and one set of verdicts; a file that changed is read again."""
    from bench.load.verdicts import METRICS, within
    from tests.fake_runs import fake_doc, write

    folder = write(tmp_path, fake_doc({"depends": 1000.0, "context": 1100.0}))
    first = Run.read(folder)
    assert Run.read(folder) is first
    verdicts = within(first, "depends", METRICS["rps"])
    assert verdicts and within(first, "depends", METRICS["rps"]) is verdicts
    write(folder, fake_doc({"depends": 1000.0, "context": 900.0, "scoped": 950.0}))
    again = Run.read(folder)
    assert again is not first and {c.variant for c in again.file.cells} >= {"scoped"}
