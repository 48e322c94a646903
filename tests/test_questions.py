"""The three answers README gives, built from run folders with chosen numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import questions
from tests.fake_runs import fake_doc, write


def _cost(folder: Path, counts: dict[str, float]) -> None:
    rows = [
        {"variant": v, "endpoint": "get", "clients": 1, "instructions_per_request": n}
        for v, n in counts.items()
    ]
    (folder / "cost.json").write_text(json.dumps({"rows": rows}))


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


def test_stalled_threadpool_names_the_reason(tmp_path: Path) -> None:
    doc = _jitter(fake_doc({"context": 1000, "sync_threadpool": 600}, users=(32, 128)), "context")
    doc["variants"]["sync_threadpool"] |= {"threadpool_tokens": 40, "pool_size": 10}
    for cell in doc["cells"]:
        if cell["variant"] == "sync_threadpool" and cell["users"] == 128:
            cell |= {"status": "invalid", "reasons": ["0 requests completed"]}
    answer = questions.sync_vs_async([write(tmp_path / "run", doc)])
    assert answer is not None
    assert "threads 40, pool 10" in answer
    assert "at 32 users" in answer and "−40 % req/s at 32 users (CI" in answer
    assert "no comparison at 128 users (all 3 of its cells invalid: 0 requests completed)" in (
        answer
    )
    assert "where the threadpool did not (at 128 users)" in answer


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
