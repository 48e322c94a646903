"""The three answers README gives, built from run folders with chosen numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import questions
from tests.fake_runs import fake_cost, fake_doc, write


def _cost(folder: Path, counts: dict[str, float]) -> None:
    rows = [
        {
            "variant": v,
            "endpoint": "get",
            "clients": 1,
            "instructions_per_request": n,
            "spread_percent": 0.1,
        }
        for v, n in counts.items()
    ]
    (folder / "cost.json").write_text(json.dumps(fake_cost(rows)))


def _jitter(doc: dict[str, Any], *series: str) -> dict[str, Any]:
    """Per-round noise of ±1 % on *series*, so paired ratios have a spread to judge by."""
    for cell in doc["cells"]:
        if cell["variant"] in series:
            cell["rps"] *= (1.0, 1.01, 0.99)[cell["trial"] - 1]
    return doc


def test_tutorial_reads_verdicts_and_instructions(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "run", _jitter(fake_doc({"depends": 1000, "sqlmodel": 700}), "sqlmodel")
    )
    _cost(folder, {"depends": 2_000_000, "sqlmodel": 2_010_000})
    answer = questions.tutorial([folder])
    assert answer is not None
    assert (
        "−30 % req/s at 4 users (CI" in answer
        and "at 4 users" in answer
        and "at 16 users" in answer
    )
    assert "executes ×1.005 depends's instructions per GET" in answer
    assert "costs what a plain `SessionDep` costs" in answer


def test_unresolved_difference_is_said_so(tmp_path: Path) -> None:
    doc = fake_doc({"depends": 1000, "sqlmodel": 1000}, trials=3)
    for cell in doc["cells"]:  # opposite drifts: the per-round ratios disagree
        if cell["variant"] == "sqlmodel":
            cell["rps"] = 1000 * (1.2 if cell["trial"] == 2 else 0.85)
    answer = questions.tutorial([write(tmp_path / "run", doc)])
    assert answer is not None and "not resolved" in answer
    assert "no instruction count" in answer


def _same_driver(doc: dict[str, Any], driver: str = "psycopg") -> dict[str, Any]:
    for info in doc["variants"].values():
        info |= {"driver": driver, "pool_size": 10}
    return doc


def test_async_question_compares_on_one_driver_and_says_where_the_answer_changes(
    tmp_path: Path,
) -> None:
    """At 8 users the same req/s, at 32 the threadpool 40 % slower, at 128 a stall."""
    doc = _same_driver(fake_doc({"context": 1000, "sync_threadpool": 1000}, users=(8, 32, 128)))
    doc["variants"]["sync_threadpool"]["threadpool_tokens"] = 40
    for cell in doc["cells"]:
        if (cell["variant"], cell["users"]) == ("sync_threadpool", 8):
            cell["rps"] *= (1.0, 1.005, 0.995)[cell["trial"] - 1]
        elif (cell["variant"], cell["users"]) == ("sync_threadpool", 32):
            cell["rps"] *= 0.6 * (1.0, 1.01, 0.99)[cell["trial"] - 1]
        elif (cell["variant"], cell["users"]) == ("sync_threadpool", 128):
            cell |= {"status": "stall", "rps": 0.0, "reasons": ["server restarted"],
                     "stall": {"users": 128, "in_flight": 128, "requests_in_window": 0,
                               "window_s": 2.5, "quiet_s": 2.4, "connections": 10,
                               "states": {"idle in transaction": 10}, "held_s": 9.0}}  # fmt: skip
    answer = questions.sync_vs_async([write(tmp_path / "driver", doc)])
    assert answer is not None
    assert "Both on psycopg, so the driver is not what differs (`driver`)" in answer
    assert "threads 40, pool 10" in answer
    assert "0 % req/s at 8 users (no difference within ±5 %, CI −1 %…+1 %)" in answer
    assert "−40 % req/s at 32 users (CI" in answer
    assert "at 128 users the threadpool deadlocks (128 requests in flight on 40 threads" in answer
    assert answer.endswith(
        "the answer changes from 32 users on: async faster; from 128 users on: the threadpool "
        "deadlocks (at 8 users: no difference)."
    )


def test_async_question_is_not_answered_across_drivers(tmp_path: Path) -> None:
    """context on asyncpg against sync_threadpool on psycopg measures the driver too."""
    doc = fake_doc({"context": 1000, "sync_threadpool": 600})
    doc["variants"]["sync_threadpool"]["driver"] = "psycopg"
    doc["variants"]["context"]["driver"] = "asyncpg"
    assert questions.sync_vs_async([write(tmp_path / "run", doc)]) is None
    same = write(tmp_path / "driver", _jitter(_same_driver(fake_doc(
        {"context": 1000, "sync_threadpool": 1000})), "sync_threadpool"))  # fmt: skip
    answer = questions.sync_vs_async([tmp_path / "run", same])
    assert answer is not None and "(`driver`)" in answer
    assert "the same answer at every user count compared (no difference)" in answer


def test_driver_axis_and_ranking(tmp_path: Path) -> None:
    rps = {"scoped+asyncpg": 1000, "context+asyncpg": 1100,
           "scoped+psycopg": 800, "context+psycopg": 700}  # fmt: skip
    doc = _jitter(fake_doc(rps), "scoped+psycopg", "context+psycopg")
    for series, info in doc["variants"].items():
        info["driver"] = series.split("+")[1]
    answer = questions.drivers([write(tmp_path / "driver", doc)])
    assert answer is not None
    assert "`scoped` −20 % req/s (CI" in answer and "`context` −36 % req/s (CI" in answer
    assert "ranking by median req/s changes" in answer
    assert "asyncpg: context > scoped; psycopg: scoped > context" in answer


def test_nothing_to_answer(tmp_path: Path) -> None:
    folder = write(tmp_path / "run", fake_doc({"depends": 1000, "context": 1100}))
    assert questions.answers([folder]) == []
    assert questions.blocks([folder]) == []
