"""Result files are input too: a truncated, corrupt or foreign file is one line and exit 2."""

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.common import result_files
from bench.common.results import ROOT, Run
from bench.pitfalls.runner import PitfallRun
from tests.source import spelled

REFERENCE = ROOT / "results" / "reference"


def damaged(kind: str, text: str) -> str | bytes:
    if kind == "truncated":
        return text[: len(text) // 2]
    if kind == "corrupt":
        return b"\x00\xff\xfe not json at all"
    if kind == "empty":
        return ""
    raise AssertionError(kind)


def write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], file: Path) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("sessionbench: error: ") and str(file) in err, err
    return err


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "empty"])
@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_damaged_run_json_is_one_line_and_exit_2(
    kind: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json = tmp_path / "run.json"
    write(run_json, damaged(kind, (REFERENCE / "run.json").read_text()))
    err = one_line_exit_2([command, str(tmp_path)], capsys, run_json)
    assert {"truncated": "truncated", "corrupt": "not UTF-8", "empty": "empty"}[kind] in err


@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_foreign_run_json_names_what_it_is(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(REFERENCE / "pitfalls.json", tmp_path / "run.json")
    err = one_line_exit_2([command, str(tmp_path)], capsys, tmp_path / "run.json")
    assert "not a sessionbench.run/… document (schema: 'sessionbench.pitfalls/1')" in err


def test_a_run_json_with_a_wrongly_typed_cell_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REFERENCE / "run.json").read_text())
    doc["cells"][3]["users"] = "many"
    (tmp_path / "run.json").write_text(json.dumps(doc))
    err = one_line_exit_2(["compare", str(tmp_path)], capsys, tmp_path / "run.json")
    assert "cells.3.users: " in err


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "foreign"])
def test_a_damaged_pitfalls_json_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = REFERENCE / ("run.json" if kind == "foreign" else "pitfalls.json")
    content = source.read_text() if kind == "foreign" else damaged(kind, source.read_text())
    write(tmp_path / "pitfalls.json", content)
    err = one_line_exit_2(["report", str(tmp_path)], capsys, tmp_path / "pitfalls.json")
    if kind == "foreign":
        assert "not a sessionbench.pitfalls/… document" in err


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_a_damaged_micro_json_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REFERENCE / "run.json").read_text())
    doc["cells"] = doc["cells"][:4]  # a small run: the report gets to micro.json quickly
    (tmp_path / "run.json").write_text(json.dumps(doc))
    micro = (REFERENCE / "micro.json").read_text()
    write(tmp_path / "micro.json", damaged(kind, micro) if kind != "foreign" else "[1, 2]")
    err = one_line_exit_2(["report", str(tmp_path)], capsys, tmp_path / "micro.json")
    if kind == "foreign":
        assert "expected a JSON object" in err or "valid dictionary" in err


def test_micro_out_that_cannot_be_written_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "micro"
    err = one_line_exit_2(["micro", "--quick", "--out", str(out)], capsys, out)
    assert "cannot write there" in err and not out.exists()


def test_the_reference_files_load() -> None:
    assert Run.load(REFERENCE).cells
    assert PitfallRun.load(REFERENCE).cells
    data = result_files.load(REFERENCE / "micro.json", result_files.MicroFile)
    assert data.benchmarks


def test_a_generic_model_loads_and_names_problems(tmp_path: Path) -> None:
    class Cost(result_files.Lenient):
        instructions: int

    path = tmp_path / "cost.json"
    path.write_text('{"instructions": 12}')
    assert result_files.load(path, Cost).instructions == 12
    path.write_text('{"instructions": "lots"}')
    with pytest.raises(result_files.ResultFileError, match=r"cost\.json: instructions: "):
        result_files.load(path, Cost)
    with pytest.raises(result_files.ResultFileError, match="no such file"):
        result_files.load(tmp_path / "missing.json", Cost)


@pytest.mark.parametrize(
    ("schema", "said"),
    [
        ("sessionbench.run/9", "sessionbench.run/9 was written by a newer sessionbench"),
        ("sessionbench.run/0", "sessionbench.run/0 was written by an older sessionbench"),
    ],
)
def test_a_run_json_of_a_format_this_suite_does_not_read_is_refused_in_one_line(
    schema: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REFERENCE / "run.json").read_text())
    doc["schema"] = schema
    (tmp_path / "run.json").write_text(json.dumps(doc))
    err = one_line_exit_2(["report", str(tmp_path)], capsys, tmp_path / "run.json")
    assert said in err and "this one reads sessionbench.run/1, sessionbench.run/2" in err


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_a_damaged_cost_json_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scorecard, the co-scheduled section and the cost section read cost.json through
    one model: a damaged one stops the report with one line, never a traceback or a guess."""
    doc = json.loads((REFERENCE / "run.json").read_text())
    doc["cells"], doc["coscheduled"] = doc["cells"][:4], None
    (tmp_path / "run.json").write_text(json.dumps(doc))
    cost = (REFERENCE / "cost.json").read_text()
    foreign = (REFERENCE / "pitfalls.json").read_text()
    write(tmp_path / "cost.json", damaged(kind, cost) if kind != "foreign" else foreign)
    err = one_line_exit_2(["report", str(tmp_path)], capsys, tmp_path / "cost.json")
    if kind == "foreign":
        assert "not a sessionbench.cost/… document" in err


def test_the_reference_cost_and_micro_files_load_typed() -> None:
    cost = result_files.load(REFERENCE / "cost.json", result_files.CostFile)
    assert cost.rows and all(r.instructions_per_request for r in cost.rows)
    assert cost.per_request()["depends", "get"] > cost.per_request()["raw", "get"]
    micro = result_files.load(REFERENCE / "micro.json", result_files.MicroFile)
    assert all(b.stats.rounds >= 1 and b.stats.q1 <= b.stats.q3 for b in micro.benchmarks)


def test_one_module_names_the_files_of_a_run_folder() -> None:
    """No module but bench/common/run_folder.py spells a result file's name (docstrings and
    comments aside): the names, and which command writes each, live in one place."""

    from bench.common import run_folder

    names = {f.name for f in run_folder.FILES}
    assert spelled(names, skip=ROOT / "bench" / "common" / "run_folder.py") == []
    assert {f.writer for f in run_folder.FILES} == {
        "run", "pitfalls", "cost", "micro", "history", "report",
    }  # fmt: skip
