"""sessionbench history: steps on synthetic data, a variant that cannot run in a set, and the
history file validated like every other result file (no environment is built here)."""

import json
import stat
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.common import result_files
from bench.common.run_folder import RunFolder
from bench.history import envs, runner, steps
from bench.history import report as history_report
from bench.history.sets import VersionSet, default_sets, main_pins, series
from variants.settings import DatabaseUrl

BASE = {"fastapi": "0.163.2", "starlette": "1.10.0", "sqlalchemy": "2.1.9", "anyio": "4.16.0"}


def a_set(name: str, status: str = "done", **packages: str) -> dict[str, Any]:
    s = VersionSet.parse(name)
    return {
        "name": name,
        "package": s.package,
        "version": s.version,
        "packages": BASE | packages,
        "changed": packages,
        "status": status,
        "cannot_run": {},
    }


def point(set_: str, variant: str, value: float, spread: float = 0.1, endpoint: str = "get"):
    return {
        "set": set_,
        "variant": variant,
        "endpoint": endpoint,
        "instructions_per_request": value,
        "spread_percent": spread,
        "repeats": 3,
    }


def history_doc(sets: list[dict[str, Any]], points: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": runner.SCHEMA,
        "run_id": "synthetic",
        "status": "complete",
        "environment": {},
        "variants": {"context": {}, "depends": {}, "depends_function": {}},
        "settings": {"variants": ["context", "depends", "depends_function"], "endpoints": ["get"],
                     "repeats": 3},
        "sets": sets,
        "points": points,
        "steps": [],
    }  # fmt: skip


def synthetic() -> dict[str, Any]:
    sets = [
        a_set("baseline"),
        a_set("fastapi-0.117.1", fastapi="0.117.1", starlette="0.48.0"),
        a_set("fastapi-0.118.0", fastapi="0.118.0", starlette="0.48.0"),
        a_set("sqlalchemy-2.0.58", sqlalchemy="2.0.58"),
    ]
    sets[1]["cannot_run"] = {"depends_function": "TypeError: Depends() got an unexpected …"}
    points = [
        # depends: +10 % at 0.118 (a step), +0.05 % to the baseline (within the spreads)
        point("fastapi-0.117.1", "depends", 1_000_000),
        point("fastapi-0.118.0", "depends", 1_100_000),
        point("baseline", "depends", 1_100_550),
        # context: 0.3 % moves, but its spreads are 0.2 % each: no step
        point("fastapi-0.117.1", "context", 900_000, spread=0.2),
        point("fastapi-0.118.0", "context", 902_700, spread=0.2),
        point("baseline", "context", 902_700, spread=0.2),
        # depends_function cannot run at 0.117.1: its first neighbours are 0.118 and main
        point("fastapi-0.118.0", "depends_function", 1_200_000),
        point("baseline", "depends_function", 1_000_000),
        # SQLAlchemy 2.0.58 → 2.1.9 (the baseline): −11.6 %
        point("sqlalchemy-2.0.58", "context", 1_021_000),
    ]
    return history_doc(sets, points)


def test_steps_are_the_changes_beyond_the_spreads_of_neighbouring_releases() -> None:
    found = steps.detect(synthetic())
    seen = {(s["variant"], s["before"], s["after"]): s for s in found}
    assert set(seen) == {
        ("depends_function", "fastapi-0.118.0", "baseline"),
        ("context", "sqlalchemy-2.0.58", "baseline"),
        ("depends", "fastapi-0.117.1", "fastapi-0.118.0"),
    }
    assert [s["variant"] for s in found] == ["depends_function", "context", "depends"]  # |size|
    depends = seen["depends", "fastapi-0.117.1", "fastapi-0.118.0"]
    assert depends["change_percent"] == pytest.approx(10.0)
    assert depends["noise_percent"] == pytest.approx(0.2)
    assert depends["changed"] == {"fastapi": "0.117.1 → 0.118.0"}
    sqla = seen["context", "sqlalchemy-2.0.58", "baseline"]
    assert sqla["package"] == "sqlalchemy" and sqla["changed"] == {"sqlalchemy": "2.0.58 → 2.1.9"}
    assert (sqla["before_version"], sqla["after_version"]) == ("2.0.58", "2.1.9")
    to_main = seen["depends_function", "fastapi-0.118.0", "baseline"]
    assert to_main["changed"] == {"fastapi": "0.118.0 → 0.163.2", "starlette": "0.48.0 → 1.10.0"}
    line = steps.line(depends)
    assert line.startswith("FastAPI 0.117.1 → 0.118.0: depends GET +10.0 %"), line


def test_a_set_not_done_is_no_neighbour() -> None:
    doc = synthetic()
    doc["sets"][2]["status"] = "failed"  # 0.118.0: its points are not read
    found = {(s["variant"], s["before"], s["after"]) for s in steps.detect(doc)}
    assert ("depends", "fastapi-0.117.1", "baseline") in found
    assert not any("fastapi-0.118.0" in (b, a) for _, b, a in found)


def test_series_order_by_version_with_the_baseline_at_mains_pin() -> None:
    sets = [VersionSet("fastapi", "0.165.0"), VersionSet(), VersionSet("fastapi", "0.99.1"),
            VersionSet("sqlalchemy", "2.0.58")]  # fmt: skip
    line = series(sets, "fastapi", {"fastapi": "0.163.2"})
    assert [s.name for s in line] == ["fastapi-0.99.1", "baseline", "fastapi-0.165.0"]
    assert main_pins()["fastapi"] == BASE["fastapi"]
    names = [s.name for s in default_sets(("0.163.2", "0.118.0"), ("2.0.58",))]
    assert names == ["baseline", "sqlalchemy-2.0.58", "fastapi-0.118.0"]  # main's pin = baseline


def test_a_locked_file_names_every_package_that_moved(tmp_path: Path) -> None:
    (tmp_path / "history-fastapi-0.106.0.txt").write_text(
        "# header\nfastapi==0.106.0\nstarlette==0.27.0\nanyio==3.7.1\nsqlalchemy==2.1.9\n"
    )
    s = VersionSet("fastapi", "0.106.0")
    assert envs.locked(s, tmp_path) == {
        "fastapi": "0.106.0", "starlette": "0.27.0", "anyio": "3.7.1", "sqlalchemy": "2.1.9",
    }  # fmt: skip
    assert envs.lock(s, tmp_path) == tmp_path / "history-fastapi-0.106.0.txt"  # kept as is


def fake_python(tmp_path: Path) -> Path:
    """An interpreter that cannot serve depends_function, as FastAPI before 0.121 cannot."""
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *depends_function*)\n'
        "  echo 'Traceback (most recent call last):'\n"
        "  echo \"TypeError: Depends() got an unexpected keyword argument 'scope'\"\n"
        "  exit 1;;\n"
        "esac\n"
        f'exec {sys.executable} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


class FakeEnvironment:
    def __init__(self, python: Path) -> None:
        self.python = python

    def ensure(self) -> Path:
        return self.python


class FakeCost:
    """What ``run_cost`` returns, for the variants it was given (no valgrind here)."""

    def __init__(self, names: list[str]) -> None:
        self.doc = {
            "status": "complete",
            "variants": {n: {} for n in names},
            "rows": [
                {"variant": n, "endpoint": "get", "clients": 1, "spread_percent": 0.1,
                 "instructions_per_request": 1_000_000.0, "repeats": 2}
                for n in names
            ],
        }  # fmt: skip


def test_a_variant_that_cannot_run_in_a_set_is_recorded_as_such(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = fake_python(tmp_path)
    measured: list[list[str]] = []

    def cost(s: VersionSet, runnable: list[str], config: Any, say: Any) -> FakeCost:
        measured.append(runnable)
        return FakeCost(runnable)

    monkeypatch.setattr(envs, "environment", lambda s: FakeEnvironment(python))
    monkeypatch.setattr(envs, "lock", lambda s: None)
    monkeypatch.setattr(runner, "_cost", cost)
    out = tmp_path / "history"
    config = runner.HistoryConfig(
        sets=[VersionSet("fastapi", "0.117.1")],
        variants=["context", "depends_function"],
        endpoints=["get"],
        repeats=2,
        out=out,
        valgrind="valgrind-test",
    )
    run = runner.run_history(config, say=lambda line: None)
    assert measured == [["context"]]
    doc = result_files.load(RunFolder(out).history, result_files.HistoryFile)
    assert doc.status == "complete"
    (entry,) = doc.sets
    assert entry.status == "done"
    assert entry.cannot_run == {
        "depends_function": "TypeError: Depends() got an unexpected keyword argument 'scope'"
    }
    assert [(p.variant, p.set) for p in doc.points] == [("context", "fastapi-0.117.1")]
    assert run.doc["points"] == json.loads(RunFolder(out).history.read_text())["points"]
    blocks, _ = history_report.section(out)
    text = json.dumps([asdict(b) for b in blocks], default=str)
    assert "cannot run" in text and "unexpected keyword argument" in text


def damaged(kind: str) -> str:
    doc = json.dumps(synthetic())
    return {
        "truncated": doc[: len(doc) // 2],
        "foreign": json.dumps({"schema": "sessionbench.cost/1"}),
        "newer": doc.replace(runner.SCHEMA, "sessionbench.history/9"),
        "bad field": doc.replace('"sets": [', '"sets": 3, "x": ['),
    }[kind]


@pytest.mark.parametrize("kind", ["truncated", "foreign", "newer", "bad field"])
def test_a_bad_history_file_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = RunFolder(tmp_path).history
    path.write_text(damaged(kind))
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("sessionbench: error: ") and str(path) in err, err
    expected = {"truncated": "truncated", "foreign": "not a sessionbench.history/… document",
                "newer": "newer sessionbench", "bad field": "sets"}[kind]  # fmt: skip
    assert expected in err, err


def test_a_synthetic_history_reports_its_steps(tmp_path: Path) -> None:
    doc = synthetic()
    doc["steps"] = steps.find(doc, tmp_path)  # no profiles here: steps stay unexplained
    RunFolder(tmp_path).history.write_text(json.dumps(doc))
    assert main(["report", str(tmp_path)]) == 0
    report = RunFolder(tmp_path).report.read_text()
    assert "FastAPI 0.117.1 → 0.118.0" in report and "+10.00 %" in report
    assert (tmp_path / "plots" / history_report.FIGURE).exists()
    summary = history_report.readme_summary(tmp_path, Path("results/history"))
    assert any("depends GET +10.0 %" in str(asdict(b)) for b in summary)


def test_resume_keeps_the_sets_done_and_measures_the_rest(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[str] = []

    def cost(s: VersionSet, runnable: list[str], config: Any, say: Any) -> FakeCost:
        measured.append(s.name)
        return FakeCost(runnable)

    monkeypatch.setattr(envs, "environment", lambda s: FakeEnvironment(Path(sys.executable)))
    monkeypatch.setattr(envs, "lock", lambda s: None)
    monkeypatch.setattr(runner, "_cost", cost)
    config = runner.HistoryConfig(
        sets=[VersionSet(), VersionSet("fastapi", "0.118.0")],
        variants=["context"],
        endpoints=["get"],
        repeats=2,
        out=tmp_path,
        valgrind="valgrind-test",
    )
    path = RunFolder(tmp_path).history
    first = runner.run_history(config, say=lambda line: None)
    first.doc["sets"][1]["status"] = "pending"  # as an interrupted run leaves it
    first.doc["points"] = [p for p in first.doc["points"] if p["set"] == "baseline"]
    first.save()
    measured.clear()
    resumed = replace(config, resume=True)
    runner.run_history(resumed, say=lambda line: None)
    assert measured == ["fastapi-0.118.0"]
    doc = result_files.load(path, result_files.HistoryFile)
    assert [s.status for s in doc.sets] == ["done", "done"]
    assert sorted(p.set for p in doc.points) == ["baseline", "fastapi-0.118.0"]


def test_steps_only_finds_the_steps_of_a_history_again(tmp_path: Path) -> None:
    RunFolder(tmp_path).history.write_text(json.dumps(synthetic()))  # its steps: []
    assert main(["history", "--steps-only", "--out", str(tmp_path)]) == 0
    doc = result_files.load(RunFolder(tmp_path).history, result_files.HistoryFile)
    assert [(s.variant, s.after) for s in doc.steps][-1] == ("depends", "fastapi-0.118.0")
