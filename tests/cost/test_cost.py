"""``sessionbench cost`` and ``compare --metric instructions``: real valgrind, real PostgreSQL.

One small cost run (context and depends, GET at one client, 32 requests, 2 repeats) is
shared by the tests of its shape, of the report and of the compare exit codes. The
interpreter's own wobble is a roughly fixed 0.1–0.3 M instructions per repeat: with 8
requests (14 M) that alone reached 1.2 % on a busy machine, with 32 it stays under 0.6 %.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.common.result_files import CostFile, RunFile
from bench.common.results import SCHEMA as RUN_SCHEMA
from bench.common.rundiff import differences
from bench.cost.explain import explain
from bench.cost.measure import Plan
from bench.cost.operations import OperationsPlan, run_operations, selection, start_operations
from bench.cost.operations_hook import GROUP_USE, GROUPS
from bench.cost.profile import RESIDUE
from bench.cost.report import rows_for, section
from bench.cost.results import OPERATION_GROUPS, SCHEMA, CostRun, load
from bench.cost.runner import CostConfig
from bench.cost.summary import verdicts
from bench.cost.valgrind import CallgrindError, CallgrindProcess, read_dump
from variants.settings import DatabaseUrl

CLI = [sys.executable, "-m", "bench.cli"]
HAVE_VALGRIND = bool(shutil.which("valgrind") and shutil.which("vgdb"))
NO_VALGRIND = (
    "valgrind is not installed, and scripts/test could not install it here (it needs root and "
    "apt-get): apt-get install valgrind"
)
needs_valgrind = pytest.mark.skipif(not HAVE_VALGRIND, reason=NO_VALGRIND)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or os.environ
    )


@pytest.fixture(scope="module")
def cost_run(db: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_VALGRIND:
        pytest.skip(NO_VALGRIND)
    out = tmp_path_factory.mktemp("cost") / "run"
    result = cli(
        "cost", "--variants", "context,depends", "--endpoints", "get", "--clients", "1",
        "--requests", "32", "--repeats", "2", "--operations", "session-lifecycle",
        "--out", str(out),
        env={**os.environ, "DATABASE_URL": db.url}, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "instructions per micro-operation" in result.stderr
    return out


@pytest.mark.slow
@needs_valgrind
def test_cost_json_shape_repeats_agree_and_depends_costs_more(cost_run: Path) -> None:
    doc = json.loads((cost_run / "cost.json").read_text())
    assert doc["schema"] == SCHEMA and doc["status"] == "complete"
    assert doc["environment"]["valgrind"].startswith("valgrind-")
    assert "cells" not in doc
    rows = {r["variant"]: r for r in doc["rows"]}
    assert set(rows) == {"context", "depends"}
    for row in rows.values():
        assert row["endpoint"] == "get" and row["clients"] == 1
        assert row["repeats"] == 2 and len(row["per_repeat"]) == 2 and row["requests"] == 32
        assert row["spread_percent"] < 1.0, row["per_repeat"]
        assert 2e5 < row["instructions_per_request"] < 5e7
    assert rows["depends"]["instructions_per_request"] > rows["context"]["instructions_per_request"]
    assert not list((cost_run / "raw" / "cost").glob("*.out.[0-9]*")), "dumps are deleted"
    assert verdicts(load(cost_run))[0].startswith("depends: +")
    lifecycle = {r["variant"]: r for r in doc["operations"]}
    assert set(lifecycle) == {"context", "depends", "bare"}  # bare: the floor beside context
    assert {r["group"] for r in doc["operations"]} == {"session-lifecycle"}


@pytest.mark.slow
@needs_valgrind
def test_report_of_a_folder_with_only_cost_json(cost_run: Path) -> None:
    blocks, _ = section(cost_run)
    tables = [b for b in blocks if b.kind == "table"]
    # instructions, micro-operations, then the explain of depends vs context (packages,
    # functions)
    assert len(tables) == 4 and len(tables[0].rows) == 2
    assert tables[2].rows[0][0] == "depends" and tables[2].rows[0][4] == "yes"
    assert any(b.kind == "img" and b.text == "plots/explain-get.png" for b in blocks)
    assert (cost_run / "plots" / "explain-get.png").exists()
    assert [r[1] for r in tables[1].rows] == ["bare", "context", "depends"]  # cheapest first
    assert tables[1].rows[1][5].startswith("1.000")  # context vs itself
    assert any("No load run" in b.text for b in blocks)
    assert main(["report", str(cost_run)]) == 0
    report = (cost_run / "report.md").read_text()
    counted = report.split("## Instructions per request (valgrind)", 1)[1].split("\n## ", 1)[0]
    for row in json.loads((cost_run / "cost.json").read_text())["rows"]:  # each row, as counted
        assert (
            f"| get | 1 | {row['variant']} | {row['instructions_per_request']:,.0f} | "
            f"{row['spread_percent']:.2f} % |"
        ) in counted, counted


@pytest.mark.slow
@needs_valgrind
def test_explain_depends_vs_context_adds_up(cost_run: Path) -> None:
    e = explain(cost_run, "depends", "context", "get")
    assert e is not None and e.measured_diff > 0
    assert e.adds_up(), (e.grouped_diff, e.measured_diff, e.spread)
    residue = next(g for g in e.groups if g.name == RESIDUE)
    assert abs(residue.a) < 1e-4 * e.measured_a  # zeroing by a dump leaves no residue
    assert e.packages[0].name == "interpreter" and e.functions
    result = cli("cost", "--explain", "depends,context", "--out", str(cost_run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "depends vs context, get at 1 client(s)" in result.stderr
    assert "(within the spreads)" in result.stderr
    assert (cost_run / "plots" / "explain-depends-vs-context-get-c1.png").stat().st_size > 10_000
    profile = json.loads((cost_run / "profiles" / "depends-get-c1.json").read_text())
    assert profile["schema"] == "sessionbench.cost-profile/1"
    assert (cost_run / "profiles" / "depends-get-c1.json").stat().st_size < 8_000


def compare(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["compare", "--metric", "instructions", *args])
    return code, capsys.readouterr().err


@pytest.mark.slow
@needs_valgrind
def test_compare_instructions_fails_above_a_regression(
    cost_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = compare(str(cost_run), capsys=capsys)
    assert code == 0 and "depends" in out
    code, out = compare(str(cost_run), str(cost_run), "--fail-above", "1", capsys=capsys)
    assert code == 0 and "differs" not in out
    regressed = tmp_path / "regressed"
    regressed.mkdir()
    doc = json.loads((cost_run / "cost.json").read_text())
    doc["rows"][0]["instructions_per_request"] *= 1.05  # +5 %: far beyond the repeats' spread
    doc["settings"]["repeats"] = 3
    (regressed / "cost.json").write_text(json.dumps(doc))
    code, out = compare(str(cost_run), str(regressed), "--fail-above", "1", capsys=capsys)
    assert code == 1, out
    assert "regression above 1 %" in out and "differs: setting repeats: 2 → 3" in out
    code, _ = compare(str(cost_run), str(regressed), "--fail-above", "10", capsys=capsys)
    assert code == 0


def test_missing_valgrind_is_exit_2_naming_the_package(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no valgrind there
    result = cli("cost", "--quick", "--variants", "context", "--out", str(tmp_path / "o"), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install valgrind" in lines[0]
    assert not (tmp_path / "o").exists()


def test_read_dump_takes_the_summary_line(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\ndesc: Trigger: dump get-c1-r1\nevents: Ir\nsummary: 123456\n"
                    "fn=(1) f\n1 5\ntotals: 123460\n")  # fmt: skip
    assert read_dump(dump) == (123456, "dump get-c1-r1")
    (tmp_path / "bad").write_text("not a dump\n")
    with pytest.raises(CallgrindError):
        read_dump(tmp_path / "bad")


def test_differences_names_settings_machine_and_versions() -> None:
    a = {"schema": "s/1", "settings": {"repeats": 3, "out": "x", "clients": [1, 16]},
         "environment": {"cpu_model": "A", "valgrind": "valgrind-3.19.0",
                         "packages": {"sqlalchemy": "2.1.9"}, "git_commit": "abc"}}  # fmt: skip
    b = json.loads(json.dumps(a))
    assert differences(a, b) == []
    b["settings"] |= {"repeats": 5, "out": "y", "clients": [1]}
    b["environment"] |= {"cpu_model": "B", "valgrind": "valgrind-3.22.0"}
    b["environment"]["packages"]["sqlalchemy"] = "2.0.0"
    lines = differences(a, b)
    assert "setting repeats: 3 → 5" in lines and "setting clients: 1,16 → 1" in lines
    assert "machine cpu_model: A → B" in lines
    assert "machine valgrind: valgrind-3.19.0 → valgrind-3.22.0" in lines
    assert "package sqlalchemy: 2.1.9 → 2.0.0" in lines
    assert not any("out" in line for line in lines)


def _row(variant: str, value: float, spread: float = 0.1) -> dict[str, Any]:
    return {"variant": variant, "endpoint": "get", "clients": 1,
            "instructions_per_request": value, "spread_percent": spread}  # fmt: skip


def _cell(variant: str, server_us: float) -> dict[str, Any]:
    return {"variant": variant, "scenario": "read", "users": 32, "status": "ok", "rps": 100.0,
            "latency_us": {"p50": 1000.0}, "cpu_us_per_request": {"server": server_us}}  # fmt: skip


def _header(schema: str) -> dict[str, Any]:
    return {"schema": schema, "status": "complete", "environment": {}, "variants": {},
            "settings": {}}  # fmt: skip


def run_with(cells: list[dict[str, Any]]) -> RunFile:
    """A load run holding *cells* (read through its model, as the report reads one)."""
    return RunFile.model_validate(_header(RUN_SCHEMA) | {"cells": cells})


def test_report_sets_cpu_ratio_beside_and_flags_disagreement() -> None:
    rows = [_row("context", 1_000_000), _row("depends", 1_100_000), _row("scoped", 1_000_000),
            _row("raw", 500_000)]  # fmt: skip
    cost = CostFile.model_validate(_header(SCHEMA) | {"rows": rows})
    cpu = [500.0, 505.0, 495.0, 502.0, 498.0]

    # Paired by round (the cell's trial): each round's ratio differs a little.
    def cells(variant: str, factor: float, values: list[float]) -> list[dict[str, Any]]:
        return [_cell(variant, us * factor) | {"trial": i} for i, us in enumerate(values)]

    run_cells = (cells("context", 1.0, cpu) + cells("depends", 1.1, cpu[::-1])
                 + cells("scoped", 1.3, cpu[::-1]))  # fmt: skip
    rows, checked, disagreements = rows_for(cost, run_with(run_cells))
    by_variant = {r[2]: r for r in rows}
    assert by_variant["depends"][5].startswith("1.100") and by_variant["raw"][6].startswith("1.000")
    assert by_variant["depends"][-1] == "agrees"  # 1.10 inside the CPU ratio's CI
    assert by_variant["scoped"][-1] == "**disagrees**"  # 1.00 instructions vs 1.3× CPU
    assert (checked, disagreements) == (2, 1) and by_variant["raw"][-2] == "–"  # no raw cells
    invalid = run_with([c | {"status": "invalid"} for c in run_cells])
    assert rows_for(cost, invalid)[1:] == (0, 0)


@pytest.mark.slow
@needs_valgrind
def test_operations_rows_of_context_and_depends(db: DatabaseUrl, tmp_path: Path) -> None:
    """The operations pass on its own, few operations per repeat: one row per operation."""
    config = CostConfig(
        mode="quick", variants=["context", "depends"],
        plan=Plan(endpoints=[], clients=[1], ops={}, repeats=2, warmup=0, first_warmup=0),
        pool_size=2, max_overflow=0, out=tmp_path, valgrind="valgrind",
        operations=OperationsPlan(
            list(GROUPS), repeats=2, ops=dict.fromkeys(GROUPS, 4), warmup=dict.fromkeys(GROUPS, 2)
        ),
    )  # fmt: skip
    run = CostRun.create(tmp_path, settings=config.settings(), env={})
    started: list[CallgrindProcess] = []
    lanes = start_operations(config, db, started.append)
    try:
        assert run_operations(run, config, db, lambda *_: None, lanes)
    finally:
        for each in started:
            each.stop()
    assert len(lanes) == 2 and not any(lane.alive() for lane in lanes)
    rows = {(r.variant, r.group): r.model_dump() for r in load(tmp_path).operations}
    expected = {(v, g) for v in ("context", "depends", "bare") for g in GROUP_USE}
    expected |= {(v, "machinery") for v in ("context", "depends", "plain")}
    assert set(rows) == expected
    for row in rows.values():
        assert row["instructions_per_op"] > 0 and len(row["per_repeat"]) == 2 and row["ops"] == 4
        assert 0 < row["round_trip_instructions"] < row["instructions_per_op"] * 4
    lifecycle = {
        v: rows[v, "session-lifecycle"]["instructions_per_op"] for v in ("bare", "depends")
    }
    assert lifecycle["depends"] > lifecycle["bare"]
    assert rows["context", "session-get"]["operation"] == "context: async with Session() as session"


def test_operation_groups_match_and_a_bad_one_is_exit_2(tmp_path: Path) -> None:
    assert OPERATION_GROUPS == GROUPS
    result = cli(
        "cost", "--operations", "session-lifecycle,lifecycle", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown operation group 'lifecycle'" in lines[0]
    assert not (tmp_path / "o").exists()
    assert selection(["raw", "context"], ["machinery"])[1] == {
        "raw": "declares no micro-benchmark operation (Variant.micro)"
    }
