"""report and compare: on a real (small) run folder produced by the suite itself, and on run
folders with chosen numbers where the outcome must not depend on the machine.

The real run is taken as measured: a busy machine may make cells invalid (saturation), and
every assertion on it holds either way. Which strategy is faster is asserted only on
constructed data (``tests/fake_runs.py``).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bench.common import plots
from bench.common.result_files import RunFile, SeriesInfo
from bench.common.results import Run
from bench.load import figures
from bench.load.report import HOW_TO_READ
from bench.load.verdicts import METRICS, between, within
from bench.report.document import build
from tests.fake_runs import fake_doc, write

CLI = [sys.executable, "-m", "bench.cli"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, db) -> Path:
    """Two variants at 4 users, two rounds: produced by `sessionbench run`, as measured."""
    out = tmp_path_factory.mktemp("report") / "run"
    subprocess.run(
        [*CLI, "run", "--no-co", "--variants", "depends,raw", "--scenarios", "read",
         "--users", "4", "--trials", "2", "--duration", "1", "--warmup", "0.3",
         "--out", str(out)],
        check=True, capture_output=True, timeout=180, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    return out


def _section(report: str, heading: str) -> str:
    start = report.index(f"## {heading}")
    end = report.find("\n## ", start + 1)
    return report[start : end if end > 0 else None]


def _jitter(doc: dict[str, Any]) -> dict[str, Any]:
    """Per-round noise (±1 %) on every series, different per series, so that paired ratios
    have a spread to judge by."""
    for cell in doc["cells"]:
        noise = (1.0, 1.01, 0.99)[(cell["trial"] + len(cell["variant"])) % 3]
        cell["rps"] *= noise
        cell["cpu_us_per_request"]["server"] /= noise
    return doc


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_report_of_a_real_run_lists_invalid_cells_and_ranks_only_valid_ones(
    small_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(small_run, folder)
    doc = json.loads((folder / "run.json").read_text())
    doc["cells"][0]["status"] = "invalid"  # an invalid cell must be listed, not averaged
    doc["cells"][0]["reasons"] = ["core 1 (locust, PostgreSQL) was 99 % busy"]
    (folder / "run.json").write_text(json.dumps(doc))
    written = build(folder)
    names = {p.name for p in written}
    assert {"report.md", "index.html", "throughput-read.png", "latency-read.png",
            "server-cpu.png", "overhead.png"} <= names  # fmt: skip
    assert not any(n.startswith("axis-") for n in names)
    for png in folder.glob("plots/*.png"):
        with Image.open(png) as image:
            assert image.size[0] == plots.SIZE[0] * plots.DPI
            low, high = image.convert("L").getextrema()
            assert high - low > 100  # not blank
    page = (folder / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources and all((folder / src).is_file() for src in sources)
    report = (folder / "report.md").read_text()
    assert report.index("## Scorecard") < report.index("## Every series against depends")
    assert "## Axis" not in report
    # Validity: the counts are the run's, and every cell that is not ok is listed with why.
    bad = [c for c in doc["cells"] if c["status"] != "ok"]
    validity = _section(report, "Validity")
    assert f"{len(doc['cells'])} cells: {len(doc['cells']) - len(bad)} valid, " in validity
    assert f"{sum(c['status'] == 'invalid' for c in bad)} invalid" in validity
    listed = re.findall(r"^\| (\w+) · read · 4 users · trial (\d) \| (\w+) \| ", validity, re.M)
    assert sorted(listed) == sorted((c["variant"], str(c["trial"]), c["status"]) for c in bad)
    first = doc["cells"][0]
    assert (
        f"| {first['variant']} · read · 4 users · trial {first['trial']} | invalid | "
        "core 1 (locust, PostgreSQL) was 99 % busy |"
    ) in validity
    # Rankings: each table ranks, lowest first, exactly the series with a valid cell.
    ranked = {c["variant"] for c in doc["cells"] if c["status"] == "ok"}
    tables = re.findall(
        r"^By [^\n]+:\n\n((?:\|[^\n]*\n)+)", _section(report, "Rankings at 4 users"), re.M
    )
    assert len(tables) == 2  # by server CPU and by p99
    for ranking in tables:
        rows = re.findall(r"^\| \d+ \| (\w+) (?:≥ )?([\d.,]+) \(", ranking, re.MULTILINE)
        assert {name for name, _ in rows} == ranked
        values = [float(v.replace(",", "")) for _, v in rows]
        assert values == sorted(values)
    # The report ends with how to read it, every point of it.
    assert _section(report, "How to read this").strip().splitlines()[2:] == [
        f"- {item}" for item in HOW_TO_READ
    ]


def test_rankings_order_by_cost_and_leave_invalid_cells_out(tmp_path: Path) -> None:
    doc = fake_doc({"depends": 1000.0, "context": 1300.0, "raw": 3000.0}, users=(4,))
    for cell in doc["cells"]:  # depends' best-looking trial is invalid: it must not count
        if cell["variant"] == "depends" and cell["trial"] == 3:
            cell |= {"status": "invalid", "reasons": ["locust used 97 % of a core"]}
            cell["cpu_us_per_request"]["server"] = 1.0
            cell["latency_us"]["p99"] = 1.0
    folder = write(tmp_path / "run", doc)
    build(folder)
    rankings = _section((folder / "report.md").read_text(), "Rankings at 4 users")
    tables = re.findall(r"^By [^\n]+:\n\n((?:\|[^\n]*\n)+)", rankings, re.M)
    assert len(tables) == 2
    for ranking in tables:  # server CPU = 1e6 / req/s and p99 = 1e7 / req/s: raw cheapest
        rows = re.findall(r"^\| (\d+) \| (\w+) ([\d.,]+) \(", ranking, re.MULTILINE)
        assert [(rank, name) for rank, name, _ in rows] == [
            ("1", "raw"), ("2", "context"), ("3", "depends"),
        ]  # fmt: skip
    depends = re.search(r"\| 3 \| depends ([\d.,]+) \(", tables[0])
    assert depends and float(depends.group(1).replace(",", "")) > 900  # not the invalid 1.0


def test_compare_within_pairs_by_round_and_between_runs_finds_no_change(tmp_path: Path) -> None:
    folder = write(tmp_path / "run", _jitter(fake_doc({"depends": 1000.0, "raw": 3000.0})))
    run = Run.load(folder)
    rows = within(run, "depends", METRICS["rps"])
    assert {(r.b, r.users) for r in rows} == {("raw", 4), ("raw", 16)}
    for row in rows:
        assert row.comparison.paired and row.comparison.significant
        assert row.comparison.ratio == pytest.approx(3.0, rel=0.03)
    same = between(run, run, METRICS["cpu"])
    assert len(same) == 4 and all(not r.comparison.paired for r in same)
    assert all(not r.comparison.significant and r.comparison.ratio == 1 for r in same)


def test_compare_cli_fail_above_and_bad_input(tmp_path: Path) -> None:
    folder = write(tmp_path / "run", _jitter(fake_doc({"depends": 1000.0, "raw": 3000.0})))
    ok = subprocess.run([*CLI, "compare", str(folder), str(folder), "--fail-above", "5"],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and "unpaired" in ok.stderr
    assert "regression" not in ok.stderr
    bad = subprocess.run([*CLI, "compare", "/nonexistent"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'/nonexistent'" in bad.stderr


def test_fail_above_exits_1_on_a_resolved_regression_beyond_the_threshold(tmp_path: Path) -> None:
    """depends serves a third of raw's req/s in every round: against raw that regression is
    resolved and beyond 20 %; against depends, raw is no regression at all."""
    folder = write(tmp_path / "run", _jitter(fake_doc({"depends": 1000.0, "raw": 3000.0})))
    worse = subprocess.run(
        [*CLI, "compare", str(folder), "--baseline", "raw", "--fail-above", "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worse.returncode == 1, worse.stderr
    flagged = re.findall(r"^regression: depends read (\d+) users: \d\.\d\dx slower", worse.stderr,
                         re.M)  # fmt: skip
    assert sorted(flagged) == ["16", "4"], worse.stderr
    better = subprocess.run(
        [*CLI, "compare", str(folder), "--baseline", "depends", "--fail-above", "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert better.returncode == 0 and "regression" not in better.stderr, better.stderr


@pytest.mark.slow
def test_fail_above_on_a_real_run_exits_as_its_own_verdicts_say(small_run: Path) -> None:
    """Whatever this machine made of depends and raw: the exit code follows the paired
    verdicts `within` computes from the same folder (the constructed test above fixes them)."""
    run = Run.load(small_run)
    for baseline in ("raw", "depends"):
        rows = within(run, baseline, METRICS["rps"])
        regressions = [
            r for r in rows if r.comparison.significant and r.comparison.regression_percent > 20
        ]  # fmt: skip
        done = subprocess.run(
            [*CLI, "compare", str(small_run), "--baseline", baseline, "--fail-above", "20"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == (1 if regressions or not rows else 0), done.stderr
        flagged = re.findall(r"^regression: (\w+) read 4 users: ", done.stderr, re.M)
        assert flagged == [r.b for r in regressions], done.stderr


def test_fail_above_exits_1_when_one_variant_of_the_reference_is_slowed(tmp_path: Path) -> None:
    """B = the committed reference with fastapi_sqla's cells 20 % slower, the rest as measured.
    Between runs nothing pairs the trials: each cell gets a second trial 2 % off its first
    (in A and in B alike), so each side has a spread to judge by."""
    committed = Path(__file__).resolve().parents[2] / "results" / "reference"
    doc = json.loads((committed / "run.json").read_text())
    doc.pop("coscheduled", None)  # between runs only the solo cells compare
    doc["cells"] += [
        c | {"trial": 2, "rps": c["rps"] * 1.02,
             "cpu_us_per_request": {**c["cpu_us_per_request"],
                                    "server": c["cpu_us_per_request"]["server"] / 1.02}}
        for c in doc["cells"] if c["status"] == "ok"
    ]  # fmt: skip
    reference = tmp_path / "a"
    reference.mkdir()
    (reference / "run.json").write_text(json.dumps(doc))
    doc = json.loads(json.dumps(doc))
    for cell in doc["cells"]:
        if cell["variant"] == "fastapi_sqla":
            cell["rps"] *= 0.8
            cell["cpu_us_per_request"]["server"] /= 0.8
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.json").write_text(json.dumps(doc))
    for metric in ("rps", "cpu"):
        slowed = subprocess.run(
            [*CLI, "compare", str(reference), str(tmp_path / "b"), "--metric", metric,
             "--fail-above", "10"], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert slowed.returncode == 1, slowed.stderr
        flagged = re.findall(r"^regression: (\w+) (\w+) (\d+) users", slowed.stderr, re.M)
        assert flagged and {name for name, _, _ in flagged} == {"fastapi_sqla"}
    same = subprocess.run([*CLI, "compare", str(reference), str(reference), "--fail-above", "10"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert same.returncode == 0 and "regression" not in same.stderr


def test_overhead_sets_each_series_against_raw_with_the_same_axis_values() -> None:
    recorded = {"context+pool5": {"variant": "context"}, "raw+pool5": {"variant": "raw"},
                "context": {"variant": "context"}}  # fmt: skip
    series = {name: SeriesInfo.model_validate(info) for name, info in recorded.items()}
    assert figures._raw_twin(series, "context+pool5") == "raw+pool5"
    assert figures._raw_twin(series, "context") == "raw"
    assert figures._raw_twin({}, "depends") == "raw"  # run.json before series


def test_validity_names_a_server_restarted_for_its_open_transactions() -> None:
    from bench.common.blocks import to_markdown
    from bench.load.report import validity

    stalled = {
        "variant": "sync", "scenario": "write", "users": 128, "trial": 2, "status": "invalid",
        "reasons": ["server restarted: left 10 transactions open (10 idle in transaction; "
                    "oldest 31.0 s, 2 s after the load stopped)", "integrity: x: y"],
        "lingering_transactions": {"count": 10, "states": {"idle in transaction": 10},
                                   "max_age_s": 31.0, "restarted": True},
    }  # fmt: skip
    fine = {"variant": "depends", "scenario": "write", "users": 128, "trial": 2,
            "status": "ok", "reasons": [], "rps": 100.0, "latency_us": {"p50": 900},
            "cpu_us_per_request": {"server": 900.0}}  # fmt: skip
    doc = {"schema": "sessionbench.run/2", "status": "complete", "settings": {},
           "environment": {}, "variants": {}, "cells": [stalled, fine]}  # fmt: skip
    report = to_markdown(validity(RunFile.model_validate(doc)))
    assert "1 invalid" in report
    listed = [line for line in report.splitlines() if line.startswith("- ")]
    assert listed == [
        "- sync · write · 128 users · trial 2: server restarted: left 10 transactions open "
        "(10 idle in transaction; oldest 31.0 s, 2 s after the load stopped)"
    ]
