"""A run folder written by hand: cells with chosen numbers, for the report's unit tests.

Only the fields the report reads; ``extra`` per series adds the newer cell fields
(``tail_resolved``, ``littles_law``, ``failures_by_phase`` …) where a test needs them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import variants


def fake_doc(
    rps: Mapping[str, float],
    *,
    users: tuple[int, ...] = (4, 16),
    trials: int = 3,
    scenarios: tuple[str, ...] = ("read",),
    extra: dict[str, dict[str, Any]] | None = None,
    jain: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A run.json document: series → median req/s (trials spread ±2 %); p99.9 = 1e8 / req/s."""
    extra = extra or {}
    cells = []
    for scenario in scenarios:
        for n in users:
            for trial in range(trials):
                for series, rate in rps.items():
                    r = rate * (1 + 0.02 * (trial - 1))
                    cells.append({
                        "variant": series, "scenario": scenario, "users": n,
                        "trial": trial + 1, "status": "ok", "reasons": [], "rps": r,
                        "latency_us": {"p50": 1e6 / r, "p90": 2e6 / r, "p99": 1e7 / r,
                                       "p99.9": 1e8 / r, "max": 2e8 / r, "mean": 2e6 / r},
                        "fairness": {"jain": (jain or {}).get(series, 0.99)},
                        "cpu_us_per_request": {"server": 1e6 / r},
                        **extra.get(series, {}),
                    })  # fmt: skip
    info = {}
    for series in rps:
        variant = series.split("+", 1)[0]
        known = variants.VARIANTS.get(variant)
        info[series] = {"kind": known.kind if known else "strategy", "variant": variant,
                        "verify": {"passed": True}}  # fmt: skip
    return {
        "schema": "sessionbench.run/1", "run_id": "fake", "status": "complete",
        "started": "2026-11-27T00:00:00+00:00", "finished": "2026-11-27T00:01:00+00:00",
        "command": ["sessionbench", "run"],
        "settings": {"mode": "quick", "variants": list(rps), "series": list(rps),
                     "scenarios": list(scenarios), "users": list(users), "trials": trials,
                     "duration": 1.0, "warmup": 0.5, "max_overflow": 0, "pool_sizes": [10]},
        "environment": {"cpu_model": "Test CPU", "cpu_count": 2, "python": "3.11",
                        "postgres": {"version": "18"}, "git_commit": "0" * 40},
        "variants": info,
        "cells": cells,
    }  # fmt: skip


def write(folder: Path, doc: dict[str, Any], name: str = "run.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(doc))
    return folder


def fake_cost(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A cost.json holding *rows* (and nothing else a reader needs)."""
    return {
        "schema": "sessionbench.cost/1", "run_id": "fake", "status": "complete",
        "settings": {"repeats": 3}, "environment": {}, "variants": {}, "rows": rows,
    }  # fmt: skip
