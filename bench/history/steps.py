"""Steps: a change of instructions per request between two neighbouring sets of one package's
series larger than the two points' repeat spreads added, and why (the per-function diff).

Neighbours are the sets of the series (``bench.history.sets.series``) that both have the
point: a variant that cannot run in a set is skipped over, never read as zero. Each step names
the packages that differ between its two sets; the ``explain`` largest (by |change|) are
explained from the two sets' profiles (``bench.cost.explain.compare_profiles``: the newer
against the older), by package and by function.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from bench.common.run_folder import RunFolder
from bench.cost import profile
from bench.cost.explain import compare_profiles
from bench.cost.results import load as load_cost
from bench.history.sets import VARIED, VersionSet, series, version_of

TOP = 5
"""Packages and functions kept per explained step."""
NAMES = {"fastapi": "FastAPI", "sqlalchemy": "SQLAlchemy"}


def detect(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of the history document *doc*, largest |change| first (not explained)."""
    points = {(p["set"], p["variant"], p["endpoint"]): p for p in doc.get("points", [])}
    entries = {s["name"]: s for s in doc["sets"]}
    done = [VersionSet.parse(n) for n, s in entries.items() if s["status"] == "done"]
    pins = entries.get("baseline", {}).get("packages", {})
    found = []
    for package in VARIED:
        line = series(done, package, pins) if pins else []
        if len(line) < 2:
            continue
        for variant in doc["settings"]["variants"]:
            for endpoint in doc["settings"]["endpoints"]:
                have = [s for s in line if (s.name, variant, endpoint) in points]
                for before, after in itertools.pairwise(have):
                    a = points[before.name, variant, endpoint]
                    b = points[after.name, variant, endpoint]
                    change = 100 * (
                        b["instructions_per_request"] / a["instructions_per_request"] - 1
                    )
                    noise = a["spread_percent"] + b["spread_percent"]
                    if abs(change) <= noise:
                        continue
                    found.append(
                        {
                            "package": package,
                            "before": before.name,
                            "after": after.name,
                            "before_version": version_of(before, package, pins),
                            "after_version": version_of(after, package, pins),
                            "variant": variant,
                            "endpoint": endpoint,
                            "change_percent": round(change, 3),
                            "noise_percent": round(noise, 3),
                            "changed": moved(entries[before.name], entries[after.name]),
                        }
                    )
    found.sort(key=lambda s: (-abs(s["change_percent"]), s["package"], s["variant"]))
    return found


def moved(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """``{package: "old → new"}`` for every package whose version differs between two sets."""
    a, b = before.get("packages", {}), after.get("packages", {})
    return {
        k: f"{a.get(k, '–')} → {b.get(k, '–')}"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    }


def explain(step: dict[str, Any], folder: Path) -> dict[str, Any]:
    """*step* with its top packages and functions (newer set against older), when both sets'
    profiles and rows are in *folder*'s ``sets/``."""
    sets = RunFolder(folder).sets
    variant, endpoint = step["variant"], step["endpoint"]
    found = []
    for name in (step["after"], step["before"]):
        try:
            row = load_cost(sets / name).row_index().get((variant, endpoint, 1))
        except ValueError:
            return step
        found.append((profile.load(sets / name, variant, endpoint, 1), row))
    (pa, row_a), (pb, row_b) = found
    if pa is None or pb is None or row_a is None or row_b is None:
        return step
    e = compare_profiles(pa, pb, row_a, row_b)
    return step | {
        "packages": [[p.name, round(p.diff, 1)] for p in e.packages[:TOP]],
        "functions": [[f.name, f.object, round(f.inclusive_diff, 1)] for f in e.functions[:TOP]],
        "adds_up": e.adds_up(),
    }


def find(doc: dict[str, Any], folder: Path, top: int = 3) -> list[dict[str, Any]]:
    """:func:`detect`'s steps; explained: the largest of each pair of sets, for the *top*
    pairs whose largest steps are largest (three strategies moving at one release are one
    change to explain, not three)."""
    found = detect(doc)
    pairs: list[tuple[str, str]] = []
    for step in found:
        if (step["before"], step["after"]) not in pairs and len(pairs) < top:
            pairs.append((step["before"], step["after"]))
            step.update(explain(step, folder))
    return found


def title(step: dict[str, Any]) -> str:
    """``FastAPI 0.117.1 → 0.118.0``."""
    name = NAMES.get(step["package"], step["package"])
    return f"{name} {step['before_version']} → {step['after_version']}"


def line(step: dict[str, Any]) -> str:
    """One line: ``FastAPI 0.117.1 → 0.118.0: depends get +9.8 % (±0.3; starlette …; top …)``."""
    others = {k: v for k, v in step.get("changed", {}).items() if k != step["package"]}
    parts = [f"±{step['noise_percent']:.2f} % spread"]
    if others:
        parts.append("with " + ", ".join(f"{k} {v}" for k, v in others.items()))
    if step.get("packages"):
        parts.append(
            "by package " + ", ".join(f"{n} {d / 1000:+,.0f} k" for n, d in step["packages"][:3])
        )
    if step.get("functions"):
        parts.append(
            "top functions "
            + ", ".join(f"{f} {d / 1000:+,.0f} k" for f, _, d in step["functions"][:3])
        )
    return (
        f"{title(step)}: {step['variant']} {step['endpoint'].upper()} "
        f"{step['change_percent']:+.1f} % ({'; '.join(parts)})"
    )
