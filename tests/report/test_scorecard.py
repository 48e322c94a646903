"""The scorecard and the report's order and cell table, on run folders written by hand."""

import json
import re
import shutil
from pathlib import Path
from typing import Any

from bench.common.result_files import LoadCell, RunFile
from bench.common.results import ROOT, censored_percentiles, percentile
from bench.load import stalls
from bench.report import scorecard
from bench.report.document import build
from bench.report.longwindow import Tail
from bench.report.readme import README_END, README_START, update_readme
from bench.report.scorecard import Score, advice, scores
from tests.fake_runs import fake_cost, fake_doc, write

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
    # Jain 0.4 in this run's short windows is no evidence: tails come from a long-window pass
    assert advice(by["scoped"]) == (
        "use with care: pitfalls not tested; tails: not measured in long windows"
    )
    assert advice(by["raw"]).startswith("a ceiling")


def test_cost_json_puts_instructions_per_get_in_the_scorecard(tmp_path: Path) -> None:
    folder = write(tmp_path, fake_doc(RATES))
    rows = [
        {"variant": v, "endpoint": e, "clients": c, "instructions_per_request": n * (2 if c > 1
         else 1) * (3 if e != "get" else 1), "spread_percent": 0.1}
        for v, n in {"depends": 1.99e6, "context": 1.80e6, "scoped": 1.79e6, "raw": 0.92e6}.items()
        for e in ("get", "list") for c in (1, 16)
    ]  # fmt: skip
    (folder / "cost.json").write_text(json.dumps(fake_cost(rows)))
    found, ctx = scores(folder)
    by = {s.series: s for s in found}
    assert ctx["cost_unit"] == "instructions/GET"
    assert by["scoped"].cost == 1.79e6 and by["scoped"].cost_relative == 1.0  # 1 client, GET
    assert round(by["depends"].cost_relative or 0, 3) == round(1.99 / 1.79, 3)
    blocks = scorecard.blocks(folder)
    assert blocks[1].headers[1] == "instructions per GET"
    assert any(row[1] == "×1.112 (1.99 M)" for row in blocks[1].rows)


def test_unresolved_tails_are_printed_as_lower_bounds(tmp_path: Path) -> None:
    doc = fake_doc(
        RATES,
        extra={
            "scoped": {"tail_resolved": False},
            **{v: {"tail_resolved": True} for v in ("depends", "context", "raw")},
        },
    )
    folder = write(tmp_path, doc)
    cells = RunFile.model_validate(doc).cells
    group = [c for c in cells if (c.variant, c.users) == ("scoped", 16)]
    assert censored_percentiles(group) == {"p99", "p99.9", "max"}
    assert percentile(group, "p99.9")[0] == 1e8 / 1250
    rows = {r[0]: r for r in scorecard.blocks(folder)[1].rows}
    assert rows["scoped"][3] == rows["context"][3] == "not measured"  # short windows only
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


def test_console_summary_marks_a_censored_p99() -> None:
    from rich.console import Console

    from bench.common.console import summary_table

    doc = fake_doc({"scoped": 1000.0, "context": 1000.0},
                   extra={"scoped": {"tail_resolved": False}})  # fmt: skip
    out = Console(width=250, record=True)
    out.print(summary_table(RunFile.model_validate(doc).cells))
    lines = out.export_text().splitlines()
    assert all("≥ 10.00 (censored)" in line for line in lines if " scoped " in line)
    assert not any("≥" in line for line in lines if " context " in line)


FAIR = Tail(0.99, 5e5, 6e5, frozenset(), 128, 10, 30.0, "overload")


def test_advice_follows_the_rules() -> None:
    tested = {"ok": 10, "broken": 1}
    # 6. no broken pitfall, fair in the long-window pass: use (speed and cost do not decide)
    good = Score("y", "strategy", cost_relative=1.4, rps_change_percent=-12, rps_resolved=True,
                 tail=FAIR, pitfalls={"ok": 11})  # fmt: skip
    assert advice(good) == "use"
    # 3. a conditional pitfall is a condition, not a verdict
    fanout = Score("x", "strategy", tail=FAIR, pitfalls=tested, broken=["fanout"])
    assert advice(fanout) == "use with care: no fan-out on one session"
    # 2. an unconditional one is avoid, whatever else the row says
    acked = Score("a", "library", tail=FAIR, pitfalls=tested, broken=["fanout", "acknowledged"])
    assert advice(acked) == "avoid: acknowledges writes before they commit"
    # 5. starving clients in the long-window pass: a condition with its numbers
    starving = Score("s", "strategy", tail=Tail(0.38, 4.9e6, 5.4e6, frozenset({"max"}), 128, 10,
                     30.0, "overload"), pitfalls={"ok": 11})  # fmt: skip
    assert advice(starving) == (
        "use with care: users ≤ pool (at 128 users: fairness 0.38, max ≥ 5.40 s)"
    )
    unmeasured = Score("u", "strategy", pitfalls={"ok": 11})
    assert advice(unmeasured) == "use with care: tails: not measured in long windows"
    # 1. a deadlock is avoid, baselines included (they are references otherwise)
    doc = RunFile.model_validate(_stalled_doc())
    stall = stalls.stalls(doc)["sync_threadpool"]
    threads = Score("sync_threadpool", "baseline", stall=stall)
    assert advice(threads) == (
        "avoid: deadlocks at 128 users (40 threads wait for 10 connections: fastapi#12066)"
    )
    assert advice(Score("sync_threadpool", "baseline")).startswith("reference: the sync Session")


def _pitfall_doc(outcomes: dict[tuple[str, object], dict[str, str]]) -> dict[str, object]:
    cells = [
        {"variant": v, "scenario": scenario, "outcome": o, "pool_pre_ping": ping, "summary": ""}
        for (scenario, ping), by in outcomes.items() for v, o in by.items()
    ]  # fmt: skip
    return {"schema": "sessionbench.pitfalls/1", "status": "complete", "settings": {},
            "environment": {}, "variants": {}, "scenarios": {}, "cells": cells}  # fmt: skip


def test_a_failure_every_strategy_shares_counts_against_none(tmp_path: Path) -> None:
    """pg_restart without pre-ping degrades everyone alike (a pool setting); with pre-ping
    only scoped leaks, so that one counts against scoped alone."""
    folder = write(tmp_path, fake_doc(RATES))
    all3 = ("depends", "context", "scoped")
    doc = _pitfall_doc({
        ("pg_restart", False): dict.fromkeys(all3, "degraded"),
        ("pg_restart", True): {"depends": "ok", "context": "ok", "scoped": "broken"},
        ("fanout", None): {"depends": "broken", "context": "ok", "scoped": "broken"},
        ("acknowledged", None): dict.fromkeys(all3, "broken"),
    })  # fmt: skip
    write(folder, doc, "pitfalls.json")
    by = {s.series: s for s in scores(folder)[0]}
    assert by["context"].broken == [] and by["context"].degraded == []
    assert by["depends"].broken == ["fanout"]
    assert by["scoped"].broken == ["pg_restart", "fanout"]
    assert advice(by["scoped"]).startswith(
        "use with care: pool_pre_ping for database restarts; no fan-out on one session"
    )
    assert by["context"].pitfalls == {"degraded": 1, "ok": 2, "broken": 1}  # shown as measured
    note = scorecard.blocks(folder)[2].text
    assert "counted against none: acknowledged, pg_restart" in note


def _overload_doc(jain: dict[str, float], duration: float) -> dict[str, Any]:
    """128 users on a pool of 10, each user completing 20 requests a second of window."""
    doc = fake_doc({f"{v}+{q}": 1000.0 for v in jain for q in ("sqlalchemy", "fifo")},
                   users=(128,), trials=2,
                   jain={f"{v}+sqlalchemy": j for v, j in jain.items()})  # fmt: skip
    doc["settings"]["duration"] = duration
    for cell in doc["cells"]:
        cell |= {"tail_resolved": True, "requests": int(128 * 20 * duration)}
    for series, info in doc["variants"].items():
        info |= {"pool_queue": series.split("+")[1], "pool_size": 10}
    return doc


def test_tails_and_fairness_come_from_the_long_window_pass_only(tmp_path: Path) -> None:
    main = write(tmp_path / "run", fake_doc(RATES, jain={"depends": 0.60}))  # 1 s windows
    short = write(tmp_path / "short", _overload_doc({"depends": 0.20, "scoped": 0.2}, 1.5))
    long = write(tmp_path / "long", _overload_doc({"depends": 0.93, "scoped": 0.38}, 30.0))
    by = {s.series: s for s in scores(main, [short])[0]}
    # 1.5 s: 30 requests per user, too few to show a tail (results.TAIL_RULE)
    assert by["depends"].tail is None and by["depends"].fairness is None
    by = {s.series: s for s in scores(main, [short, long])[0]}
    # the default queue's series (sqlalchemy), not the FIFO one (0.99)
    assert by["depends"].fairness == 0.93 and by["scoped"].fairness == 0.38
    assert by["depends"].tail is not None and by["depends"].tail.window_s == 30.0
    assert by["raw"].tail is None  # not in the pass: "not measured", never a short window's
    rows = {r[0]: r for r in scorecard.blocks(main, [long])[1].rows}
    assert rows["depends"][3] == "101 ms · 202 ms" and rows["depends"][4] == "0.93"
    assert rows["raw"][3] == "not measured" and rows["raw"][4] == "–"
    assert "30 s windows" in scorecard.blocks(main, [long])[2].text


def test_pool_timeouts_of_the_followed_pass_show_beside_the_tail(tmp_path: Path) -> None:
    """A followed overload pass counts requests that hit pool_timeout: a row with any says
    "k of n timed out at 30 s" (summed over its valid trials) next to p99.9 · max; a row
    with none, or from a pass that was not followed, reads as before."""
    main = write(tmp_path / "run", fake_doc(RATES))
    doc = _overload_doc({"depends": 0.93, "scoped": 0.38}, 30.0)
    counted = {"scoped+sqlalchemy": (3, 1900), "depends+sqlalchemy": (0, 2000)}
    for cell in doc["cells"]:
        if cell["variant"] in counted:
            count, of = counted[cell["variant"]]
            cell["timeouts"] = {"count": count, "of": of, "at_s": 30.0, "max_us": 30_004_000,
                                "by_phase": {}}  # fmt: skip
    followed = write(tmp_path / "followed", doc)
    rows = {r[0]: r for r in scorecard.blocks(main, [followed])[1].rows}
    assert rows["scoped"][3] == "101 ms · 202 ms; 6 of 3,800 timed out at 30 s"  # 2 trials
    assert rows["depends"][3] == "101 ms · 202 ms"  # followed, none timed out
    assert rows["raw"][3] == "not measured"
    assert "answered 503 after waiting `pool_timeout`" in scorecard.blocks(main, [followed])[2].text
    by = {s.series: s for s in scores(main, [followed])[0]}
    assert by["scoped"].tail is not None and by["scoped"].tail.timeouts is not None
    assert (by["scoped"].tail.timeouts.count, by["scoped"].tail.timeouts.of) == (6, 3800)
    # An invalid trial's timeouts are not counted: only the valid trials' windows are.
    for cell in doc["cells"]:
        if cell["variant"] == "scoped+sqlalchemy":
            cell["status"] = "invalid"
            break
    again = write(tmp_path / "again", doc)
    rows = {r[0]: r for r in scorecard.blocks(main, [again])[1].rows}
    assert rows["scoped"][3].endswith("; 3 of 1,900 timed out at 30 s")
    unfollowed = write(tmp_path / "plain", _overload_doc({"depends": 0.93, "scoped": 0.38}, 30.0))
    by = {s.series: s for s in scores(main, [unfollowed])[0]}
    assert by["scoped"].tail is not None and by["scoped"].tail.timeouts is None
    rows = {r[0]: r for r in scorecard.blocks(main, [unfollowed])[1].rows}
    assert rows["scoped"][3] == "101 ms · 202 ms"
    assert "answered 503" not in scorecard.blocks(main, [unfollowed])[2].text


def _stalled_doc() -> dict[str, Any]:
    """sync_threadpool stalls in every read trial at 128 users and serves at 32."""
    doc = fake_doc({"depends": 1000.0, "context": 1100.0, "sync_threadpool": 600.0},
                   users=(32, 128))  # fmt: skip
    for info in doc["variants"].values():
        info["pool_size"] = 10
    doc["variants"]["sync_threadpool"]["threadpool_tokens"] = 40
    for cell in doc["cells"]:
        if (cell["variant"], cell["users"]) == ("sync_threadpool", 128):
            cell |= {"status": "stall", "rps": 0.0, "requests": 0, "reasons": ["server restarted"],
                     "stall": {"users": 128, "in_flight": 128, "requests_in_window": 0,
                               "window_s": 1.5, "quiet_s": 1.8, "connections": 10,
                               "states": {"idle in transaction": 10}, "held_s": 14.2}}  # fmt: skip
    return doc


def test_a_stall_is_a_result_in_the_scorecard_and_the_tables(tmp_path: Path) -> None:
    folder = write(tmp_path / "run", _stalled_doc())
    (folder / "cost.json").write_text(json.dumps(fake_cost([
        {"variant": v, "endpoint": "get", "clients": 1, "instructions_per_request": n,
         "spread_percent": 0.1}
        for v, n in {"depends": 2.0e6, "context": 1.8e6, "sync_threadpool": 2.7e6}.items()
    ])))  # fmt: skip
    rows = {r[0]: r for r in scorecard.blocks(folder)[1].rows}
    sync = rows["sync_threadpool"]
    assert sync[1] == "×1.500 (2.70 M)"  # the cost still shows
    assert sync[2] == "deadlocks at 128 users; 600 at 32 users"  # and req/s where it served
    assert sync[6] == (
        "avoid: deadlocks at 128 users (40 threads wait for 10 connections: fastapi#12066)"
    )
    (folder / "cost.json").unlink()  # the cost report wants a whole cost.json
    build(folder)
    report = (folder / "report.md").read_text()
    assert "fastapi#12066" in _section(report, "Scorecard")
    head = _section(report, "Every series against depends")
    assert "| read | sync_threadpool | deadlocks at 128 users (40 threads wait" in head
    assert "no valid trial" not in head
    assert "| read | 128 | sync_threadpool | 0/3, 3 stalled | stall |" in report
    assert "3 cells: " not in report and "0 valid, 3 stalled, 0 invalid" not in report
    assert ", 3 stalled, 0 invalid, 0 failed" in _section(report, "Validity")
    held = _section(report, "Stalls: what held what")
    assert (
        "- sync_threadpool: deadlocks at 128 users: 3 of 3 cells at 128 users stalled (read): "
        "128 requests in flight on 40 threads, pool 10; connections held: 10 idle in "
        "transaction, the oldest for 14.2 s; at most 0 requests completed in a 1.5 s window, "
        "none in its last 1.8 s"
    ) in held
    assert "since fastapi#888" in held


def test_an_older_run_s_lingering_cell_that_stopped_answering_reads_as_a_stall() -> None:
    """Runs before the stall status kept these as invalid cells with lingering_transactions:
    the runner's rule tells a stall (no answer) from a leak (kept answering)."""
    doc = _stalled_doc()
    lingering = {"count": 10, "states": {"idle in transaction": 10}, "max_age_s": 14.2}
    for cell in doc["cells"]:
        if cell["status"] == "stall":
            del cell["stall"]
            cell |= {"status": "invalid", "lingering_transactions": lingering,
                     "censored": {"count": 128}}  # fmt: skip
    run = RunFile.model_validate(doc)
    assert stalls.stalls(run)["sync_threadpool"].users == 128
    leak = {**doc["cells"][0], "status": "invalid", "requests": 900,
            "lingering_transactions": lingering}  # fmt: skip
    assert not stalls.is_stall(LoadCell.model_validate(leak), run)
