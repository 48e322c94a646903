"""report and compare on a real (small) run folder produced by the suite itself."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bench.common import plots
from bench.common.result_files import RunFile, SeriesInfo
from bench.common.results import Run
from bench.load import figures
from bench.load.verdicts import METRICS, between, within
from bench.report.document import build

CLI = [sys.executable, "-m", "bench.cli"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, db) -> Path:
    """Two variants, two user counts, two trials: produced by `sessionbench run`."""
    out = tmp_path_factory.mktemp("report") / "run"
    subprocess.run(
        [*CLI, "run", "--no-co", "--variants", "depends,raw", "--scenarios", "read",
         "--users", "2,4", "--trials", "2", "--duration", "1", "--warmup", "0.3",
         "--out", str(out)],
        check=True, capture_output=True, timeout=180, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    # A busy machine (other tests, other workers) invalidates cells for saturation alone; the
    # report and compare under test need valid cells: count those as what they measured.
    doc = json.loads((out / "run.json").read_text())
    for cell in doc["cells"]:
        if cell["status"] == "invalid" and all(
            "busy" in r or "locust" in r for r in cell["reasons"]
        ):
            cell["status"], cell["reasons"] = "ok", []
    (out / "run.json").write_text(json.dumps(doc))
    return out


@pytest.mark.timeout(240)
def test_report_writes_every_file_with_images_that_exist(small_run: Path, tmp_path: Path) -> None:
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
    assert "## Validity" in report and "## How to read this" in report
    assert "99 % busy" in report and "1 invalid" in report
    assert "## Rankings at 4 users" in report and "## Axis" not in report
    rankings = report.split("## Rankings at 4 users", 1)[1].split("\n## ", 1)[0]
    tables = re.findall(r"^By [^\n]+:\n\n((?:\|[^\n]*\n)+)", rankings, re.MULTILINE)
    assert len(tables) == 2  # by server CPU and by p99
    for ranking in tables:  # each ranked lowest first, every series of the run in it
        rows = re.findall(r"^\| \d+ \| (\w+) (?:≥ )?([\d.,]+) \(", ranking, re.MULTILINE)
        assert {name for name, _ in rows} == {"raw", "depends"}
        values = [float(v.replace(",", "")) for _, v in rows]
        assert values == sorted(values)
    assert not any(n.startswith("axis-") for n in names)


def test_compare_within_and_between_runs(small_run: Path) -> None:
    run = Run.load(small_run)
    rows = within(run, "depends", METRICS["rps"])
    assert {(r.b, r.users) for r in rows} == {("raw", 2), ("raw", 4)}
    same = between(run, run, METRICS["cpu"])
    assert same and all(not r.comparison.significant for r in same)
    assert all(r.comparison.ratio == 1 for r in same)


def test_compare_cli_fail_above_and_bad_input(small_run: Path) -> None:
    ok = subprocess.run([*CLI, "compare", str(small_run), str(small_run), "--fail-above", "5"],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and "unpaired" in ok.stderr
    assert "no significant difference" not in ok.stderr
    bad = subprocess.run([*CLI, "compare", "/nonexistent"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'/nonexistent'" in bad.stderr


def test_fail_above_follows_the_paired_verdict_of_a_real_run(small_run: Path) -> None:
    """depends serves far fewer req/s than raw in the same rounds: --fail-above exits 1 exactly
    when that regression is resolved beyond the threshold (2 rounds may not resolve it: the
    deterministic test below covers the exit on a resolved regression)."""
    rows = within(Run.load(small_run), "raw", METRICS["rps"])
    assert rows and all(r.comparison.paired for r in rows)
    assert all(r.b_value < r.a_value for r in rows)  # measured: the ORM costs throughput
    resolved = any(r.comparison.significant and r.comparison.regression_percent > 20 for r in rows)
    worse = subprocess.run(
        [*CLI, "compare", str(small_run), "--baseline", "raw", "--fail-above", "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worse.returncode == (1 if resolved else 0), worse.stderr
    if resolved:
        assert re.search(
            r"regression: depends read \d users: \d\.\d\dx slower \(−\d\d % req/s", worse.stderr
        )
    better = subprocess.run(
        [*CLI, "compare", str(small_run), "--baseline", "depends", "--fail-above", "20"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert better.returncode == 0 and "regression" not in better.stderr, better.stderr


def test_fail_above_exits_1_when_one_variant_of_the_reference_is_slowed(tmp_path: Path) -> None:
    """B = the committed reference with fastapi_sqla's cells 20 % slower, the rest as measured.
    Between runs nothing pairs the trials: each cell gets a second trial 2 % off its first
    (in A and in B alike), so each side has a spread to judge by."""
    committed = Path(__file__).resolve().parent.parent / "results" / "reference"
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
