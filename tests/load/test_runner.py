"""The load runner: run order, validity rules, an end-to-end smoke run and Ctrl-C."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.common.results import SCHEMA
from bench.load.runner import (
    Placement,
    RunConfig,
    local_processes_args,
    validity_reasons,
    warnings,
)
from bench.report.document import build
from variants.settings import DatabaseUrl


def config(**overrides: Any) -> RunConfig:
    values: dict[str, Any] = {
        "mode": "quick", "variants": ["a", "b", "c"], "scenarios": ["read"], "users": [8],
        "trials": 2, "duration": 1.0, "warmup": 0.5, "pool_sizes": [10], "max_overflow": 0,
        "out": Path("/tmp/x"),
    }  # fmt: skip
    return RunConfig(**{**values, **overrides})


def test_trials_are_interleaved_and_rotated() -> None:
    order = [(trial, variant) for trial, _, _, variant in config(trials=3).cells()]
    assert order == [
        (1, "a"), (1, "b"), (1, "c"),
        (2, "b"), (2, "c"), (2, "a"),
        (3, "c"), (3, "a"), (3, "b"),
    ]  # fmt: skip
    assert config().cell_count == len(list(config().cells())) == 6


def test_every_cell_appears_once() -> None:
    cfg = config(scenarios=["read", "write"], users=[1, 32], trials=2)
    cells = list(cfg.cells())
    assert len(cells) == len(set(cells)) == cfg.cell_count == 24


def test_one_axis_value_keeps_plain_variant_names() -> None:
    cfg = config(pool_sizes=[32], workers=[2], asgi_servers=["granian"])
    assert [(s.name, s.pool_size, s.workers, s.server) for s in cfg.series()] == [
        ("a", 32, 2, "granian"), ("b", 32, 2, "granian"), ("c", 32, 2, "granian"),
    ]  # fmt: skip


def test_varied_axes_name_their_series_and_multiply_the_cells() -> None:
    cfg = config(variants=["a", "b"], pool_sizes=[10, 32], asgi_servers=["uvicorn", "granian"])
    assert [s.name for s in cfg.series()] == [
        "a+pool10+uvicorn", "b+pool10+uvicorn", "a+pool10+granian", "b+pool10+granian",
        "a+pool32+uvicorn", "b+pool32+uvicorn", "a+pool32+granian", "b+pool32+granian",
    ]  # fmt: skip
    assert cfg.cell_count == len(list(cfg.cells())) == 8 * 2
    assert cfg.settings()["series"] == [s.name for s in cfg.series()]


def test_locust_cpu_limit_scales_with_its_processes() -> None:
    busy = measured(cpu_percent={"server": 99.0, "locust": 150.0})
    assert validity_reasons(busy, PINNED, locust_processes=2) == []
    assert validity_reasons(busy, PINNED, locust_processes=1)


def test_local_processes_bind_loopback_on_a_free_port() -> None:
    args = local_processes_args(3, port=45678)
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert options == {
        "--processes": "3",
        "--master-bind-host": "127.0.0.1", "--master-bind-port": "45678",
        "--master-host": "127.0.0.1", "--master-port": "45678",  # where the workers connect
    }  # fmt: skip
    picked = dict(zip(*[iter(local_processes_args(2))] * 2, strict=True))
    port = int(picked["--master-bind-port"])
    assert port != 5557 and 0 < port < 65536 and picked["--master-port"] == str(port)
    with socket.socket() as sock:  # free: nothing listens there
        sock.bind(("127.0.0.1", port))


def measured(**overrides: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "requests": 1000, "errors": 0, "failures": {},
        "failures_by_phase": {"warmup": {}, "window": {}, "stop": {}},
        "cpu_percent": {"server": 99.0, "locust": 40.0, "postgres": 20.0},
        "core_busy_percent": [99.0, 70.0], "integrity": [{"name": "x", "ok": True, "detail": ""}],
    }  # fmt: skip
    return {**cell, **overrides}


PINNED = Placement({0}, {1})


def test_a_clean_cell_is_valid() -> None:
    assert validity_reasons(measured(), PINNED) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"requests": 0}, "no requests"),
        ({"failures_by_phase": {"warmup": {}, "window": {"GET /todos/{id}: 500": 3}, "stop": {}}},
         "3 failed requests (most"),
        ({"failures_by_phase": {"warmup": {"GET /todos/{id}: 503": 2}, "window": {}, "stop": {}}},
         "2 failed requests in the warmup phase"),
        ({"failures_by_phase": {"warmup": {}, "window": {}, "stop": {"POST /todos: reset": 1}}},
         "1 failed requests in the stop phase"),
        ({"cpu_percent": {"server": 99.0, "locust": 93.0}}, "locust used 93 %"),
        ({"core_busy_percent": [99.0, 97.0]}, "core 1 (locust, PostgreSQL) was 97 % busy"),
        ({"integrity": [{"name": "no_idle_in_transaction", "ok": False, "detail": "2 idle"}]},
         "integrity: no_idle_in_transaction: 2 idle"),
    ],
)  # fmt: skip
def test_invalid_cells_say_why(overrides: dict[str, Any], reason: str) -> None:
    reasons = validity_reasons(measured(**overrides), PINNED)
    assert any(reason in r for r in reasons), reasons


def test_locust_s_own_cpu_warning_is_no_rule() -> None:
    # locust samples its CPU first after 10 s: the flag was always false and is gone
    cell = measured()
    assert "locust_cpu_warning" not in cell and validity_reasons(cell, PINNED) == []


def test_littles_law_and_censored_tails_warn_without_invalidating() -> None:
    starved = measured(
        littles_law={"ratio": 0.39, "ok": False},
        tail_resolved=False,
        censored={"count": 128, "max_age_us": 11_000_000},
    )
    assert validity_reasons(starved, PINNED) == []  # a starving strategy is a real result
    notes = warnings(starved)
    assert any("Little's law" in n and "0.39" in n for n in notes), notes
    assert any("128 requests censored" in n and "11000 ms" in n for n in notes), notes
    assert warnings(measured(littles_law={"ratio": 1.02, "ok": True}, tail_resolved=True)) == []


def test_core_saturation_is_not_judged_without_separate_cores() -> None:
    shared = Placement({0}, {0})
    assert validity_reasons(measured(core_busy_percent=[100.0]), shared) == []


CLI = [sys.executable, "-m", "bench.cli"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_smoke_run_end_to_end(tmp_path: Path, db) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--no-co", "--variants", "context,raw", "--scenarios", "write,mixed,multi",
         "--users", "4", "--trials", "1", "--duration", "1", "--warmup", "0.5", "--out", str(out)],
        capture_output=True, text=True, timeout=280,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["schema"] == SCHEMA and doc["status"] == "complete"
    assert doc["environment"]["postgres"]["version"]
    assert doc["environment"]["database_url"] == db.redacted
    assert {name: v["verify"]["passed"] for name, v in doc["variants"].items()} == {
        "context": True,
        "raw": True,
    }
    assert [(c["scenario"], c["variant"]) for c in doc["cells"]] == [
        (s, v) for s in ("write", "mixed", "multi") for v in ("context", "raw")
    ]
    for cell in doc["cells"]:
        assert cell["requests"] > 0 and cell["errors"] == 0
        assert all(check["ok"] for check in cell["integrity"]), cell["integrity"]
        names = {c["name"] for c in cell["integrity"]}
        assert names >= {
            "acknowledged_writes", "no_idle_in_transaction", "connections_within_pool",
        }  # fmt: skip
        if doc["environment"]["statement_counts"]:  # every request name is in its table
            assert "statements_as_expected" in names
        if cell["scenario"] == "write":  # each user's last edit stays and is checked
            updates = next(c for c in cell["integrity"] if c["name"] == "acknowledged_updates")
            assert not updates["detail"].startswith("0 of 0"), updates
        within = next(c for c in cell["integrity"] if c["name"] == "connections_within_pool")
        peak = int(within["detail"].split("(peak ")[1].split()[0])
        assert 1 <= peak <= 10, within  # sampled while the users ran (pool 10)
        assert set(cell["failures_by_phase"]) == {"warmup", "window", "stop"}
        assert not any(cell["failures_by_phase"].values())
        assert 0 < cell["censored"]["count"] <= 4 and cell["tail_check"]["rule"]
        assert cell["latency_completed_us"]["p50"] > 0 and cell["censored_histogram"]
        assert cell["littles_law"]["expected_mean_us"] > 0 and cell["littles_law"]["ratio"] > 0
        lat = cell["latency_us"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
        assert cell["cpu_us_per_request"]["server"] > 0
        assert 0 < cell["fairness"]["jain"] <= 1 and cell["fairness"]["max"] > 0
        # Only machine saturation may make a smoke cell invalid, never its data.
        assert all("busy" in r or "locust" in r for r in cell["reasons"]), cell["reasons"]
        assert (out / "raw").exists()
    assert "req/s" in result.stderr  # the summary table


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_axes_run_every_series_on_its_own_server_and_locust_listens_on_loopback(
    tmp_path: Path, db
) -> None:
    out, log = tmp_path / "run", tmp_path / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [*CLI, "run", "--variants", "context", "--scenarios", "read", "--users", "4",
             "--trials", "1", "--duration", "1", "--warmup", "0.3", "--pool-size", "3,5",
             "--server", "uvicorn,granian", "--workers", "2", "--locust-processes", "2",
             "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "DATABASE_URL": db.url},
        )  # fmt: skip
        listening = _locust_listeners(proc, timeout=150)
    assert proc.returncode == 0, log.read_text()[-3000:]
    # locust's master and workers listen on loopback only, never on locust's default port
    assert listening and all(ip == "127.0.0.1" for ip, _ in listening), listening
    assert 5557 not in {port for _, port in listening}
    doc = json.loads((out / "run.json").read_text())
    names = ["context+pool3+uvicorn", "context+pool3+granian", "context+pool5+uvicorn",
             "context+pool5+granian"]  # fmt: skip
    assert doc["settings"]["series"] == names and sorted(doc["variants"]) == sorted(names)
    info = doc["variants"]["context+pool5+granian"]
    assert {k: info[k] for k in ("kind", "variant", "pool_size", "workers", "server")} == {
        "kind": "strategy", "variant": "context", "pool_size": 5, "workers": 2, "server": "granian",
    }  # fmt: skip
    for cell in doc["cells"]:
        assert cell["requests"] > 0 and cell["errors"] == 0, cell["reasons"]
        pool = doc["variants"][cell["variant"]]["pool_size"]
        within = next(c for c in cell["integrity"] if c["name"] == "connections_within_pool")
        assert within["ok"] and str(pool * 2) in within["detail"], within
    for raw in sorted((out / "raw").iterdir()):
        result = json.loads((raw / "result.json").read_text())  # the master's, merged
        assert result["processes"] == 3  # locust master + 2 workers
        start = json.loads((raw / "start.json").read_text())
        # one window, the master's, in every process (and in the CPU accounting)
        assert result["windows"] == [start["window"]] * 3, (start, result["windows"])
        assert sum(result["per_user"]) > 0
    written = {p.name for p in build(out)}
    assert {
        "axis-pool_size.png",
        "axis-server.png",
    } <= written and "axis-workers.png" not in written


def _locust_listeners(proc: subprocess.Popen, timeout: float) -> set[tuple[str, int]]:
    """The TCP addresses *proc*'s locust processes listened on, sampled until it ends."""
    listening: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError("the run did not end in time")
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                if "locust" in " ".join(_cmdline(child)):
                    listening |= {
                        (c.laddr.ip, c.laddr.port)
                        for c in child.net_connections("tcp")
                        if c.status == psutil.CONN_LISTEN
                    }
        time.sleep(0.1)
    return listening


def test_more_pooled_connections_than_postgres_allows_is_a_usage_error(tmp_path: Path, db) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--variants", "depends,context", "--pool-size", "400", "--out", str(out)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "800 connections" in error[0] and "--pool-size" in error[0]
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "failed" and "max_connections" in doc["error"] and not doc["cells"]


def start_run(out: Path, db, variants: str, trials: int, duration: float) -> subprocess.Popen:
    """`sessionbench run` of the read scenario with 2 users, in the background."""
    return subprocess.Popen(
        [*CLI, "run", "--no-co", "--variants", variants, "--scenarios", "read", "--users", "2",
         "--trials", str(trials), "--duration", str(duration), "--warmup", "0.2",
         "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_dying_server_fails_its_cell_and_the_run_goes_on(tmp_path: Path, db) -> None:
    """The first cell's server is killed 0.5 s after its locust started (2 s windows leave
    time to spare). Two trials of two variants: the three later cells include the killed
    variant's second one, so its server must have been restarted (a third trial added
    nothing the assertions look at)."""
    out = tmp_path / "run"
    proc = start_run(out, db, "raw,context", trials=2, duration=2)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        assert proc.poll() is None and time.monotonic() < deadline
        locusts = [
            p for p in psutil.Process(proc.pid).children(recursive=True)
            if "locust" in " ".join(_cmdline(p))
        ]  # fmt: skip
        if locusts:
            target = next(a for a in locusts[0].cmdline() if a.startswith("http://"))
            port = target.rsplit(":", 1)[1]
            victim = next(
                p for p in psutil.Process(proc.pid).children()
                if "serve" in _cmdline(p) and port in _cmdline(p)
            )  # fmt: skip
        time.sleep(0.1)
    time.sleep(0.5)
    victim.kill()
    assert proc.wait(150) == 0, proc.stderr.read() if proc.stderr else ""
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "complete" and len(doc["cells"]) == 4
    failed = [c for c in doc["cells"] if c["status"] == "failed"]
    assert len(failed) == 1 and "server died" in failed[0]["reasons"][0]
    later = [c for c in doc["cells"] if c["order"] > failed[0]["order"]]
    assert later and all(c["requests"] > 0 for c in later)
    assert any(c["variant"] == failed[0]["variant"] for c in later)  # restarted, then served


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_starving_strategy_s_tail_is_censored_and_a_fair_one_s_is_resolved(
    tmp_path: Path, db
) -> None:
    """Issue 11's done-when (read, pool 10, a 10 s window), made deterministic. The starving
    series is scoped on SQLAlchemy's pool queue, the fair one the same strategy on the FIFO
    queue (no barging by construction). At 128 users scoped's starvation sometimes eased
    within the window (1 of 3 idle runs resolved), and context at 256 users sits near the
    5 % line (7.9 % and 8.2 % in 2 of 3 runs). At 256 users scoped's tail was censored in
    every run on the slower AMD host (worst shift 6.9–143 %), but on a 1.9× faster host both
    trials of one clean-clone CI run resolved (2.6 %). At 512 users every trial measured
    there was censored (68–157 %; the oldest request waited the whole 12 s), FIFO's resolved
    (oldest 0.4 s): the more waiters, the more newcomers barge past them."""
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--variants", "scoped", "--pool-queue", "sqlalchemy,fifo",
         "--scenarios", "read", "--users", "512", "--trials", "2", "--duration", "10",
         "--warmup", "2", "--pool-size", "10", "--out", str(out)],
        capture_output=True, text=True, timeout=280,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cells = json.loads((out / "run.json").read_text())["cells"]
    starving = [c for c in cells if c["variant"] == "scoped+sqlalchemy"]
    fair = [c for c in cells if c["variant"] == "scoped+fifo"]
    assert len(starving) == len(fair) == 2
    assert any(c["tail_resolved"] is False for c in starving), [c["tail_check"] for c in starving]
    for cell in starving:  # the censored requests count at their age: max ≥ the oldest one
        assert cell["latency_us"]["max"] >= cell["censored"]["max_age_us"] * 0.999
    for cell in fair:
        assert cell["tail_resolved"] is True, cell["tail_check"]
        assert cell["censored"]["count"] > 0  # in flight at the end, but as young as the rest


def test_the_summary_prints_an_unresolved_tail_as_a_lower_bound() -> None:
    from rich.console import Console

    from bench.common.console import summary_table
    from bench.common.result_files import LoadCell

    def cell(variant: str, resolved: bool) -> LoadCell:
        return LoadCell.model_validate({
            "variant": variant, "scenario": "read", "users": 128, "status": "ok", "rps": 2000.0,
            "cpu_us_per_request": {"server": 480.0}, "fairness": {"jain": 0.8},
            "latency_us": {"p50": 4000, "p99": 1_234_000}, "tail_resolved": resolved,
        })  # fmt: skip

    console = Console(record=True, width=200)
    console.print(summary_table([cell("scoped", False), cell("context", True)]))
    lines = console.export_text().splitlines()
    assert "≥ 1234.00 (censored)" in next(line for line in lines if "scoped" in line)
    context = next(line for line in lines if "context" in line)
    assert "1234.00" in context and "censored" not in context


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_child_keeps_finished_cells_and_deletes_the_database(
    sig: signal.Signals, tmp_path: Path
) -> None:
    """Signalled once a cell has finished (the next one most likely under load: PostgreSQL,
    the server and locust all up); the runner's own embedded database goes too."""
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the runner's own PG
    proc = subprocess.Popen(
        [*CLI, "run", "--variants", "raw", "--scenarios", "read", "--users", "2",
         "--trials", "20", "--duration", "1", "--warmup", "0.2", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 150
    while True:  # until a cell has finished
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no cell finished in time"
        children = psutil.Process(proc.pid).children(recursive=True)
        cmdlines = [" ".join(_cmdline(p)) for p in children]
        if any("locust" in c for c in cmdlines) and _cells(out):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    children = psutil.Process(proc.pid).children(recursive=True)
    pgdata = next(
        Path(c.split(" -D ", 1)[1].split()[0])
        for c in (" ".join(_cmdline(p)) for p in children) if " -D " in c
    )  # fmt: skip
    assert pgdata.exists() and any("serve" in _cmdline(p) for p in children)
    proc.send_signal(sig)
    assert proc.wait(90) == 130
    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
    assert not pgdata.exists()  # the embedded database is deleted too
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "incomplete" and doc["interrupted_by"] == sig.name
    assert doc["cells"] and all(c["status"] in ("ok", "invalid") for c in doc["cells"])


def _cells(out: Path) -> list[dict[str, Any]]:
    """The cells run.json holds so far (none before it is first written)."""
    try:
        return json.loads((out / "run.json").read_text())["cells"]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_deadlocked_server_is_recorded_as_a_stall_with_what_held_what(
    tmp_path: Path, db: DatabaseUrl
) -> None:
    """sync_threadpool at 128 users on 40 threads and a pool of 10 (issue 24): every thread
    waits in the pool's checkout while the 10 connection holders wait for a thread to
    validate their response. The cell is a stall, with what held what, not "invalid"."""
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--variants", "sync_threadpool", "--scenarios", "read", "--users", "128",
         "--trials", "1", "--duration", "1.5", "--warmup", "0.5", "--pool-size", "10",
         "--out", str(out)],
        capture_output=True, text=True, timeout=220,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "run.json").read_text())
    [cell] = doc["cells"]
    assert cell["status"] == "stall", (cell["status"], cell["reasons"])
    stall = cell["stall"]
    assert stall["users"] == 128 and stall["in_flight"] == 128
    assert stall["connections"] == 10 and stall["states"] == {"idle in transaction": 10}
    assert stall["held_s"] >= 2 and stall["quiet_s"] >= 0.75, stall
    assert stall["requests_in_window"] < 128  # well under one round of its users
    assert doc["variants"]["sync_threadpool"]["threadpool_tokens"] == 40
    assert cell["reasons"][0].startswith("server restarted: left 10 transactions open")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_follow_mode_counts_real_pool_timeouts_without_invalidating(tmp_path: Path, db) -> None:
    """A pool of 1 with a 50-ms pool_timeout at 32 users: the pool times out for real, the
    server answers 503 "pool timeout", and the followed cell counts them as timeouts."""
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--variants", "scoped", "--scenarios", "read", "--users", "32",
         "--pool-size", "1", "--trials", "1", "--duration", "0.5", "--warmup", "0.2",
         "--follow", "--out", str(out)],
        capture_output=True, text=True, timeout=110,
        env={**os.environ, "DATABASE_URL": db.url, "SESSIONBENCH_POOL_TIMEOUT": "0.05"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["settings"]["follow"] == 5.05 and doc["settings"]["pool_timeout"] == 0.05
    (cell,) = doc["cells"]
    timeouts = cell["timeouts"]
    assert 0 < timeouts["count"] <= timeouts["of"] == cell["started_in_window"]
    assert timeouts["at_s"] == 0.05 and timeouts["max_us"] >= 50_000
    (raw,) = (out / "raw").glob("*/result.json")  # the recorder's counts by status
    answered = json.loads(raw.read_text())["counts"]
    assert sum(n for key, n in answered.items() if key.endswith(" 503")) >= timeouts["count"]
    assert not any(cell["failures_by_phase"].values())  # timeouts are no failures
    assert not any("failed requests" in r for r in cell["reasons"]), cell["reasons"]
    assert cell["follow"]["complete"] is True and cell["censored"]["count"] == 0
    assert cell["tail_resolved"] is True and cell["latency_us"]["max"] >= timeouts["max_us"]


def test_the_cells_table_shows_a_followed_max_and_its_pool_timeouts() -> None:
    from bench.common.result_files import LoadCell
    from bench.load.report import timeouts

    def cell(count: int, of: int, status: str = "ok", **more: Any) -> LoadCell:
        timed = {"timeouts": {"count": count, "of": of, "at_s": 30.0}} if count else {}
        measured = {"rps": 1.0, "latency_us": {}, "cpu_us_per_request": {}}
        return LoadCell.model_validate(
            {"variant": "v", "status": status, **timed, **measured, **more}
        )

    assert timeouts([cell(2, 20_000), cell(1, 19_000), cell(50, 100, "invalid")]) == (
        "3 of 39,000 at 30 s"
    )
    assert timeouts([cell(0, 0)]) == "–"
