"""run.json's co-scheduled record goes through its models both ways: what the pass writes reads
back the same, the reference's record is the same JSON after a read, and a damaged record stops
the report in one line (bench/common/co_record.py)."""

import json
from pathlib import Path
from typing import Any

import pytest

from bench.common import cpu, histograms, tally
from bench.common.co_record import CoGroup, CoRecord, CoSide, IntegrityCheck
from bench.common.results import ROOT, Run
from bench.load import coschedule
from bench.load.coschedule import CoSettings, Member
from tests.common.test_result_files import one_line_exit_2

REFERENCE = ROOT / "results" / "reference"


class FakeServer:
    pid = None


def written_record() -> CoRecord:
    """A record as the pass builds one: settings, a group with windows (one dropped) and sides
    (one whose locust wrote nothing), a group whose server failed to start."""
    names = ["context", "depends"]
    snaps = [
        (0.0, cpu.Snapshot({"server:context": 0.0, "server:depends": 0.0,
                            "locust:context": 0.0, "locust:depends": 0.0}, [0.0, 0.0], [0.0, 0.0])),
        (1.0, cpu.Snapshot({"server:context": 0.5, "server:depends": 0.5,
                            "locust:context": 0.1, "locust:depends": 0.1}, [0.9, 0.2], [0.3, 0.0])),
    ]  # fmt: skip
    hist = histograms.merge([])
    hist.record_value(1000)
    results: dict[str, dict[str, Any] | None] = {
        "context": {"sub_windows": [{"histogram": histograms.encode(hist), "failures": 0}]},
        "depends": None,
    }
    tallies = {
        "context": [tally.Row(0, 0, 0, 0), tally.Row(1, 500, 500_000_000, 0)],
        "depends": [],  # no dumps: locust's count and the process's CPU
    }
    members = [Member(n, n, None, FakeServer()) for n in names]  # type: ignore[arg-type]
    windows = coschedule._windows(snaps, members, results, tallies)
    ok = CoGroup(
        round=1, scenario="read", users=32, members=names, order=0, window_s=1.0,
        status="invalid", reasons=["depends: locust wrote no results:\n"], look=1,
    )  # fmt: skip
    ok.sides = {
        "context": CoSide(
            status="ok",
            reasons=[],
            late_s=0.0,
            failures_by_phase={"window": 0},
            integrity=[IntegrityCheck(name="acknowledged_writes", ok=True, detail="0 rows")],
            requests_all_phases=512,
        ),
        "depends": CoSide(status="failed", reasons=["locust wrote no results:\n"]),
    }
    ok.windows = windows
    failed = CoGroup(
        round=1, scenario="read", users=32, members=names, order=1, window_s=1.0,
        status="ok", reasons=[], look=2,
    )  # fmt: skip
    failed.status, failed.reasons = "failed", ["depends: server did not start"]
    settings = CoSettings(anchors=["context"], windows=1, window=1.0).record()
    return CoRecord(settings=settings, groups=[ok, failed], series=names)


def test_what_the_pass_writes_reads_back_the_same(tmp_path: Path) -> None:
    record = written_record()
    assert record.groups[0].windows[0].dropped == "steal 30.0 % > 20 %"
    written = record.document()
    assert "sides" not in written["groups"][1]  # a failed group: only what was set
    assert written["groups"][0]["sides"]["depends"] == {
        "status": "failed", "reasons": ["locust wrote no results:\n"]
    }  # fmt: skip
    run = Run.create(tmp_path, settings={}, env={})
    run.doc["coscheduled"] = written
    run.save()
    read = Run.load(tmp_path).file.coscheduled
    assert read == record
    assert read is not None and read.document() == written
    assert json.loads(json.dumps(written)) == written  # plain JSON: nothing left as a model


def test_the_reference_record_is_the_same_json_after_a_read() -> None:
    doc = json.loads((REFERENCE / "run.json").read_text())
    co = Run.load(REFERENCE).file.coscheduled
    assert co is not None and co.groups
    assert json.dumps(co.document()) == json.dumps(doc["coscheduled"])  # keys in the same order


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (
            lambda co: co["groups"][2]["windows"][1]["members"].__setitem__("depends", {}),
            "coscheduled.groups.2.windows.1.members.depends.requests: missing",
        ),
        (
            lambda co: co["groups"][0].__setitem__("users", "many"),
            "coscheduled.groups.0.users: ",
        ),
        (lambda co: co["settings"].pop("anchors"), "coscheduled.settings.anchors: missing"),
        (lambda co: co.__setitem__("groups", {"read": []}), "coscheduled.groups: "),
    ],
)
def test_a_damaged_co_record_is_one_line_and_exit_2(
    damage: Any, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((REFERENCE / "run.json").read_text())
    damage(doc["coscheduled"])
    (tmp_path / "run.json").write_text(json.dumps(doc))
    err = one_line_exit_2(["report", str(tmp_path)], capsys, tmp_path / "run.json")
    assert said in err, err
