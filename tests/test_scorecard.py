"""The scorecard and the report's order and cell table, on run folders written by hand."""

import json
import re
import shutil
from pathlib import Path

from bench.common.results import ROOT, censored_percentiles, percentile
from bench.report.document import README_END, README_START, build, scorecard, update_readme
from bench.report.scorecard import Score, advice, scores
from tests.fake_runs import fake_doc, write

RATES = {"depends": 1000.0, "context": 1300.0, "scoped": 1250.0, "raw": 3000.0}


def _section(report: str, heading: str) -> str:
    start = report.index(f"## {heading}")
    end = report.find("\n## ", start)
    return report[start : end if end > 0 else None]


def test_scores_read_the_numbers_in_the_metric_they_name(tmp_path: Path) -> None:
    rows, ctx = scores(write(tmp_path, fake_doc(RATES, jain={"scoped": 0.4})))
    by = {s.series: s for s in rows}
    assert ctx["scenario"] == "read" and ctx["users"] == 16
    assert ctx["cost_unit"] == "server CPU µs/req"
    # +30 % req/s for context (more req/s is a positive change, whatever the verdict says)
    assert round(by["context"].rps_change_percent or 0) == 30
    assert by["depends"].verdict == "baseline"
    assert by["context"].cost_relative == 1.0  # cheapest strategy (raw is a baseline)
    assert by["raw"].cost_relative is not None and by["raw"].cost_relative < 1
    assert [s.series for s in rows] == ["context", "scoped", "depends", "raw"]  # baselines last
    assert advice(by["scoped"]).startswith("avoid when users can outnumber the pool")
    assert advice(by["raw"]).startswith("a ceiling")


def test_cost_json_puts_instructions_per_get_in_the_scorecard(tmp_path: Path) -> None:
    folder = write(tmp_path, fake_doc(RATES))
    rows = [
        {"variant": v, "endpoint": e, "clients": c, "instructions_per_request": n * (2 if c > 1
         else 1) * (3 if e != "get" else 1), "spread_percent": 0.1}
        for v, n in {"depends": 1.99e6, "context": 1.80e6, "scoped": 1.79e6, "raw": 0.92e6}.items()
        for e in ("get", "list") for c in (1, 16)
    ]  # fmt: skip
    (folder / scorecard.COST_FILE).write_text(json.dumps({"rows": rows}))
    found, ctx = scores(folder)
    by = {s.series: s for s in found}
    assert ctx["cost_unit"] == "instructions/GET"
    assert by["scoped"].cost == 1.79e6 and by["scoped"].cost_relative == 1.0  # 1 client, GET
    assert round(by["depends"].cost_relative or 0, 3) == round(1.99 / 1.79, 3)
    blocks = scorecard.blocks(folder)
    assert blocks[1].headers[1] == "instructions per GET"
    assert any(row[1] == "×1.11 (1.99 M)" for row in blocks[1].rows)


def test_unresolved_tails_are_printed_as_lower_bounds(tmp_path: Path) -> None:
    doc = fake_doc(
        RATES,
        extra={
            "scoped": {"tail_resolved": False},
            **{v: {"tail_resolved": True} for v in ("depends", "context", "raw")},
        },
    )
    folder = write(tmp_path, doc)
    group = [c for c in doc["cells"] if (c["variant"], c["users"]) == ("scoped", 16)]
    assert censored_percentiles(group) == {"p99", "p99.9", "max"}
    assert percentile(group, "p99.9")[0] == 1e8 / 1250
    rows = {r[0]: r for r in scorecard.blocks(folder)[1].rows}
    assert rows["scoped"][3] == "≥ 80 ms (censored)"
    assert rows["context"][3] == "77 ms"
    build(folder)
    report = (folder / "report.md").read_text()
    cells = _section(report, "Every cell")
    assert "| read | 16 | scoped | 3/3 |" in cells
    assert cells.count("(censored)") == 4  # p99 and p99.9 of scoped at 4 and 16 users
    ranks = _section(report, "Rankings")
    assert "scoped ≥ 8 (censored; " in ranks and "context ≥" not in ranks
    assert "less noisy" not in report


def test_cell_table_shows_littles_law_and_failures_by_phase_when_recorded(tmp_path: Path) -> None:
    law = {"expected_mean_us": 1.0, "recorded_mean_us": 0.4, "ratio": 0.4, "ok": False}
    failures = {"warmup": {"GET /todos/{id}": 2}, "window": {}, "stop": {"GET /todos/{id}": 1}}
    doc = fake_doc(
        {"depends": 1000.0, "scoped": 1100.0},
        extra={"scoped": {"littles_law": law, "failures_by_phase": failures},
               "depends": {"littles_law": {**law, "ratio": 1.0, "ok": True},
                           "failures_by_phase": {"warmup": {}, "window": {}, "stop": {}}}},
    )  # fmt: skip
    folder = write(tmp_path, doc)
    build(folder)
    cells = _section((folder / "report.md").read_text(), "Every cell")
    assert "Little's law ratio" in cells and "failures by phase" in cells
    assert re.search(r"\| scoped \| 3/3 \|.*\| 0\.40 ✗ 3 off \| warmup 6, stop 3 \|", cells)
    assert re.search(r"\| depends \| 3/3 \|.*\| 1\.00 \| 0 \|", cells)
    old = tmp_path / "old"
    build(write(old, fake_doc({"depends": 1000.0})))
    assert "Little's law" not in (old / "report.md").read_text()


def test_report_order_scorecard_figures_then_tables(tmp_path: Path) -> None:
    folder = write(tmp_path, fake_doc(RATES))
    build(folder)
    for name, heading, image in (("report.md", "## ", "!["), ("index.html", "<h2>", "<img")):
        page = (folder / name).read_text()
        assert page.index(f"{heading}Scorecard") < page.index(image)
        assert page.rindex(image) < page.index(f"{heading}Every series against depends")
        assert page.rindex(image) < page.index(f"{heading}Every cell")


def test_readme_section_starts_with_the_scorecard(tmp_path: Path) -> None:
    folder = write(tmp_path / "results" / "run", fake_doc(RATES))
    build(folder)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_START}\nold\n{README_END}\nafter\n")
    update_readme(folder, readme)
    section = readme.read_text().split(README_START, 1)[1]
    assert section.lstrip().startswith("Scorecard — read scenario at 16 concurrent users")
    assert section.index("| strategy |") < section.index("Reference run")
    assert "after" in readme.read_text() and "old" not in section


def test_pitfalls_only_folder_gets_a_pitfall_scorecard(tmp_path: Path) -> None:
    pitfalls = ROOT / "results" / "reference" / "pitfalls.json"
    folder = tmp_path / "pitfalls"
    folder.mkdir()
    shutil.copy(pitfalls, folder / "pitfalls.json")
    build(folder)
    report = (folder / "report.md").read_text()
    card = _section(report, "Scorecard")
    assert report.index("## Scorecard") < report.index("## Pitfall matrix")
    doc = json.loads(pitfalls.read_text())
    for name in doc["settings"]["variants"]:
        assert f"| {name} |" in card


def test_advice_follows_the_rules() -> None:
    broken = Score("x", "strategy", fairness=0.99, pitfalls={"ok": 8, "broken": 1},
                   broken=["fanout"])  # fmt: skip
    assert advice(broken).startswith("avoid when handlers do fanout")
    good = Score("y", "strategy", cost_relative=1.0, fairness=0.99, pitfalls={"ok": 10})
    assert advice(good) == "use: among the cheapest; fair under overload; no pitfall broken"
    slow = Score("z", "library", cost_relative=1.3, fairness=0.99, rps_change_percent=-12,
                 rps_resolved=True)  # fmt: skip
    assert advice(slow) == (
        "use with care: −12 % req/s vs depends; costs +30 % over the cheapest; fair under overload"
    )
    unresolved = Score("w", "strategy", fairness=0.99, rps_change_percent=-12)
    assert "req/s" not in advice(unresolved)  # a difference the run did not resolve is no reason
    censored = Score("v", "strategy", fairness=0.95, p999_censored=True)
    assert advice(censored).startswith("avoid when users can outnumber the pool")


def test_console_summary_marks_a_censored_p99() -> None:
    from rich.console import Console

    from bench.common.console import summary_table

    doc = fake_doc({"scoped": 1000.0, "context": 1000.0},
                   extra={"scoped": {"tail_resolved": False}})  # fmt: skip
    out = Console(width=250, record=True)
    out.print(summary_table(doc["cells"]))
    lines = out.export_text().splitlines()
    assert all("≥ 10.00 (censored)" in line for line in lines if " scoped " in line)
    assert not any("≥" in line for line in lines if " context " in line)
