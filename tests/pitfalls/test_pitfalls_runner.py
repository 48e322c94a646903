"""The pitfall runner and command: a dying server, Ctrl-C, usage errors, the report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.common.result_files import PitfallFile
from bench.pitfalls.probe import OK, Outcome, Target, responsive
from bench.pitfalls.report import findings
from bench.pitfalls.runner import PITFALLS_FILE, SCHEMA, PitfallConfig, PitfallRunner
from bench.report.document import build

CLI = [sys.executable, "-m", "bench.cli"]


async def killer(target: Target) -> Outcome:
    """Kills its own server mid-scenario."""
    assert target.server.pid is not None
    os.kill(target.server.pid, signal.SIGKILL)
    status = await responsive(target, within=2)
    return Outcome(OK, f"never reached a verdict: {status}")


async def survivor(target: Target) -> Outcome:
    """Checks the server answers."""
    status = await responsive(target)
    return Outcome(OK if status == "200" else "broken", status, {"status": status})


@pytest.mark.slow
def test_a_server_killed_mid_scenario_is_recorded_and_the_run_goes_on(tmp_path: Path, db) -> None:
    config = PitfallConfig(
        mode="quick", variants=["context"], scenarios=["killer", "survivor"], soak=1.0,
        pool_size=10, pool_timeout=2.0, out=tmp_path / "run",
    )  # fmt: skip
    runner = PitfallRunner(
        config,
        progress=lambda *_: None,
        registry={"killer": killer, "survivor": survivor},
    )
    doc = runner.run().doc
    assert doc["schema"] == SCHEMA and doc["status"] == "complete"
    first, second = doc["cells"]
    assert first["outcome"] == "error" and first["summary"].startswith("server died")
    assert "restarted" in first["notes"][0]
    assert second["outcome"] == OK and second["numbers"] == {"status": "200"}
    assert doc["variants"]["context"]["restarts"] == 1
    assert doc["scenarios"] == {"killer": "Kills its own server mid-scenario",
                                "survivor": "Checks the server answers"}  # fmt: skip
    on_disk = json.loads((tmp_path / "run" / PITFALLS_FILE).read_text())
    assert on_disk["cells"] == doc["cells"]
    # A folder with only pitfalls.json gets a report of its own.
    written = build(tmp_path / "run")
    report = (tmp_path / "run" / "report.md").read_text()
    matrix = report.split("## Pitfall matrix", 1)[1].split("\n## ", 1)[0]
    row = {  # scenario description → the context column of its row
        line.split(" | ")[0].split(": ", 1)[-1]: line.split(" | ")[1]
        for line in matrix.splitlines()
        if line.startswith("| ") and ": " in line.split(" | ")[0]
    }
    assert "server died" in row["Kills its own server mid-scenario"], row
    assert "server died" not in row["Checks the server answers"], row
    assert (tmp_path / "run" / "plots" / "pitfalls-matrix.png") in written


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigint_stops_every_child_and_marks_the_run_incomplete(tmp_path: Path, db) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*CLI, "pitfalls", "--variants", "context", "--scenarios", "soak", "--soak", "300",
         "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the server never started"
        try:
            if json.loads((out / PITFALLS_FILE).read_text())["variants"]:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    time.sleep(1.0)  # in the soak
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130  # promptly, not when the soak ends
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    doc = json.loads((out / PITFALLS_FILE).read_text())
    assert doc["status"] == "incomplete" and doc["finished"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--scenarios", "fanout,nope"], "'nope'"),
        (["--variants", "context,nope"], "'nope'"),
        (["--soak", "0"], "'0'"),
        (["--pool-timeout", "soon"], "'soon'"),
        (["--quick", "--full"], "--full"),
    ],
)
def test_bad_flags_are_one_line_errors(args: list[str], named: str) -> None:
    result = subprocess.run([*CLI, "pitfalls", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sessionbench pitfalls: error:"), lines
    assert named in lines[0]


async def by_pid(targets: list[Target]) -> list[Outcome | Exception]:
    """Judges each target by its own server; the second one's probe fails."""
    found: list[Outcome | Exception] = []
    for i, target in enumerate(targets):
        status = await responsive(target)
        numbers = {"pid": target.server.pid, "pre_ping": target.pre_ping, "status": status}
        found.append(RuntimeError("probe failed") if i == 1 else Outcome(OK, status, numbers))
    return found


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_shared_scenario_runs_every_variant_and_setting_at_once_each_judged_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the runner's own PostgreSQL a shared scenario gets one server per variant and
    setting, each started for it, all at once; each cell is its own server's verdict (one
    failing probe is an error in its cell only), and the servers are gone afterwards."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = PitfallConfig(
        mode="quick", variants=["context", "depends"], scenarios=["group"], soak=1.0,
        pool_size=10, pool_timeout=2.0, out=tmp_path / "run", pre_ping="on", repeats=1,
    )  # fmt: skip
    runner = PitfallRunner(
        config, progress=lambda *_: None, registry={"group": survivor}, shared={"group": by_pid}
    )
    doc = runner.run().doc
    assert doc["status"] == "complete"
    cells = doc["cells"]
    assert [(c["variant"], c["pool_pre_ping"]) for c in cells] == [
        ("context", True),
        ("depends", True),
    ]
    assert cells[0]["outcome"] == OK and cells[0]["numbers"]["status"] == "200"
    assert cells[0]["numbers"]["pre_ping"] is True
    assert cells[1]["outcome"] == "error" and "probe failed" in cells[1]["summary"]
    assert all("one of 2 servers" in c["notes"][0] for c in cells)
    # Only the shared scenario ran: no variant's own server was needed, none restarted.
    assert {v["restarts"] for v in doc["variants"].values()} == {0}
    assert runner.wave == [] and not any(s.alive() for s in runner.servers.values())
    assert {"start_up_s", "shared_start_up_s", "group_s"} <= set(doc["timings"])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_restart_runs_with_pre_ping_off_and_on_each_cell_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real run on the runner's own embedded PostgreSQL (the restart needs one it owns):
    two variants under pre-ping off and on, four servers through each shared restart.
    Pre-ping reaches each server's engine (a restart during idle time then fails no request,
    where the same server without it fails at least one), each cell records its setting and
    its own server's numbers, and two runs per cell fold into one cell with its count."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = PitfallConfig(
        mode="quick", variants=["context", "depends"], scenarios=["pg_restart"], soak=1.0,
        pool_size=10, pool_timeout=2.0, out=tmp_path / "run", pre_ping="both", repeats=2,
    )  # fmt: skip
    doc = PitfallRunner(config, progress=lambda *_: None).run().doc
    assert doc["status"] == "complete"
    assert doc["settings"]["pre_ping"] == "both" and doc["settings"]["repeats"] == 2
    cells = doc["cells"]
    assert [(c["variant"], c["pool_pre_ping"]) for c in cells] == [
        ("context", False), ("context", True), ("depends", False), ("depends", True),
    ]  # fmt: skip
    for cell in cells:
        assert cell["worst"]["of"] == len(cell["runs"]) == 2
        assert cell["worst"]["count"] == cell["tally"][cell["outcome"]] >= 1
        assert "one of 4 servers" in cell["notes"][0]
        runs = [r["numbers"] for r in cell["runs"]]
        assert all(n["recovered"] and n["requests"] > 0 for n in runs), runs
        assert all(n["leaked_connections"] == 0 for n in runs), runs
        idle = [n["errors_after_idle_restart"] for n in runs]
        if cell["pool_pre_ping"]:
            assert idle == [0, 0], (cell["variant"], idle)
        else:
            assert all(k >= 1 for k in idle), (cell["variant"], idle)
        # Each server was loaded on its own: its own requests failed in the outage.
        assert all(n["errors_during_outage"] >= 1 for n in runs), runs
    assert {v["restarts"] for v in doc["variants"].values()} == {0}
    report = "\n".join(findings(PitfallFile.model_validate(doc)))
    # Not the outcome with pre-ping on: a request in flight when PostgreSQL comes back can
    # still fail ("failed after PostgreSQL was back", seen in 3 of 5 runs of context).
    assert "PostgreSQL restart mid-load (pre-ping on) — " in report
    assert "every strategy with pre-ping off (4 of 4 runs), none with pre-ping on" in report
