"""The scorecard: the report's first screen, one row per series, derived from the numbers.

Per series: its cost (instructions per GET from ``cost.json`` when the folder has one,
else server CPU µs per request), relative to the cheapest strategy; req/s against
``depends`` with the statistics module's verdict; the tail under overload (p99.9 and
fairness at the highest user count, "≥ X (censored)" when unresolved); the pitfall
matrix's outcome counts; and one line on when to use it, from fixed rules (``advice``).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common.blocks import Block, p, table
from bench.common.result_files import PitfallFile, load_document
from bench.common.results import Run, censored_percentiles, percentile, series_names
from bench.common.stats import signed_percent
from bench.report.compare import METRICS, within

COST_FILE = "cost.json"
PITFALLS_FILE = "pitfalls.json"  # bench.pitfalls.runner.PITFALLS_FILE, read as plain JSON
BASELINE = "depends"
GET_ENDPOINTS = {"get", "read", "get_by_id", "get /todos/{id}", "/todos/{id}"}
"""Names the cost run may give the GET-by-id endpoint (compared lower-case)."""

# The rules behind the last column (percent or index; see ``advice``).
FAIR_MIN = 0.90  # Jain's index below this at the highest user count: clients starve
SLOWER_PERCENT = 5.0  # a resolved req/s loss beyond this against depends counts
COSTLIER = 1.15  # cost ≥ 15 % above the cheapest strategy counts
CHEAPEST = 1.02  # within 2 % of the cheapest strategy: "among the cheapest"
PITFALL_ORDER = ("ok", "degraded", "broken", "error", "skipped")


@dataclass
class Score:
    """One scorecard row, as numbers; ``cells`` renders it."""

    series: str
    kind: str
    cost: float | None = None  # per request, in ``cost_unit``
    cost_relative: float | None = None  # to the cheapest strategy
    rps: float | None = None
    rps_change_percent: float | None = None  # in req/s: +10 = 10 % more req/s than depends
    rps_resolved: bool = False  # the verdict found a difference
    verdict: str = ""
    p999_us: float | None = None
    p999_censored: bool = False
    fairness: float | None = None
    pitfalls: dict[str, int] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)


def _ms(us: float) -> str:
    return f"{us / 1e6:.2f} s" if us >= 1e6 else f"{us / 1000:.0f} ms"


def tail_text(us: float, censored: bool) -> str:
    """A latency, "≥ X (censored)" when it is only a lower bound."""
    return f"≥ {_ms(us)} (censored)" if censored else _ms(us)


def headline_scenario(doc: dict[str, Any]) -> str | None:
    """The scenario the scorecard reads: ``read`` (GET by id, as the cost run) if run."""
    present = [s for s in doc["settings"]["scenarios"] if any(
        c["scenario"] == s for c in doc["cells"])]  # fmt: skip
    return "read" if "read" in present else (present[0] if present else None)


def _twin(doc: dict[str, Any], series: str, variant: str) -> str:
    """*variant* run with the same axis values as *series* (``depends+pool32`` …)."""
    own = doc["variants"].get(series, {}).get("variant", series.split("+", 1)[0])
    return variant + series.removeprefix(own)


def get_instructions(folder: Path) -> dict[str, float]:
    """Instructions per GET by id per variant from *folder*'s cost.json (fewest clients)."""
    path = folder / COST_FILE
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    rows = [
        r for r in doc.get("rows") or doc.get("cells") or []
        if isinstance(r, dict) and str(r.get("endpoint", "")).strip().lower() in GET_ENDPOINTS
        and isinstance(r.get("instructions_per_request"), int | float)
    ]  # fmt: skip
    if not rows:
        return {}
    fewest = min(r.get("clients", 1) for r in rows)
    per: dict[str, list[float]] = {}
    for r in rows:
        if r.get("clients", 1) == fewest:
            per.setdefault(str(r["variant"]), []).append(float(r["instructions_per_request"]))
    return {v: statistics.median(xs) for v, xs in per.items()}


def _pitfalls(folder: Path) -> dict[str, list[dict[str, Any]]]:
    path = folder / PITFALLS_FILE
    if not path.exists():
        return {}
    doc = load_document(path, PitfallFile)  # validated: a damaged file is one line, exit 2
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for cell in doc.get("cells", []):
        by_variant.setdefault(cell["variant"], []).append(cell)
    return by_variant


def _kind(doc: dict[str, Any], series: str) -> str:
    import variants

    info = doc["variants"].get(series, {})
    if "kind" in info:
        return str(info["kind"])
    known = variants.VARIANTS.get(series.split("+", 1)[0])
    return known.kind if known else "strategy"


def scores(folder: Path) -> tuple[list[Score], dict[str, Any]]:
    """The scorecard's rows for *folder* and what they were read from (for the caption)."""
    pitfalls = _pitfalls(folder)
    context: dict[str, Any] = {"pitfalls": bool(pitfalls)}
    if not (folder / "run.json").exists():
        out = [_with_pitfalls(Score(name, _kind({"variants": {}}, name)), pitfalls)
               for name in pitfalls]  # fmt: skip
        return out, context
    run = Run.load(folder)
    doc = run.doc
    scenario = headline_scenario(doc)
    if scenario is None:
        return [], context
    top = max(c["users"] for c in doc["cells"] if c["scenario"] == scenario)
    context |= {"scenario": scenario, "users": top}
    instructions = get_instructions(folder)
    context["cost_unit"] = "instructions/GET" if instructions else "server CPU µs/req"
    context["tail_recorded"] = any("tail_resolved" in c for c in doc["cells"])
    verdicts: dict[tuple[str, str], Any] = {}
    names = series_names(doc)
    for base in {_twin(doc, s, BASELINE) for s in names}:
        if base in names:
            for row in within(run, base, METRICS["rps"]):
                if row.scenario == scenario and row.users == top:
                    verdicts[base, row.b] = row
    out = []
    for name in names:
        group = [c for c in doc["cells"] if (c["variant"], c["scenario"], c["users"]) == (
            name, scenario, top)]  # fmt: skip
        valid = [c for c in group if c["status"] == "ok"]
        score = Score(name, _kind(doc, name))
        if valid:
            score.rps = statistics.median(c["rps"] for c in valid)
            if instructions:
                score.cost = instructions.get(name.split("+", 1)[0])
            else:
                cpu = [v for c in valid if (v := c["cpu_us_per_request"].get("server")) is not None]
                score.cost = statistics.median(cpu) if cpu else None
            if all("p99.9" in c["latency_us"] for c in valid):
                score.p999_us = percentile(group, "p99.9")[0]
                score.p999_censored = "p99.9" in censored_percentiles(group)
            jain = [c["fairness"]["jain"] for c in valid if "fairness" in c]
            score.fairness = statistics.median(jain) if jain else None
        compared = verdicts.get((_twin(doc, name, BASELINE), name))
        if compared is not None:
            score.verdict = compared.comparison.verdict()
            # Computed from the medians of req/s themselves, whatever sign the verdict uses.
            score.rps_change_percent = 100 * (compared.b_value / compared.a_value - 1)
            score.rps_resolved = bool(getattr(compared.comparison, "significant", False))
        elif name == _twin(doc, name, BASELINE):
            score.verdict = "baseline"
        out.append(_with_pitfalls(score, pitfalls))
    strategies = [s.cost for s in out if s.kind == "strategy" and s.cost]
    cheapest = min(strategies) if strategies else None
    for s in out:
        if s.cost and cheapest:
            s.cost_relative = s.cost / cheapest
    out.sort(key=lambda s: (s.kind == "baseline", -(s.rps or 0)))
    return out, context


def _with_pitfalls(score: Score, pitfalls: dict[str, list[dict[str, Any]]]) -> Score:
    cells = pitfalls.get(score.series.split("+", 1)[0], [])
    for cell in cells:
        score.pitfalls[cell["outcome"]] = score.pitfalls.get(cell["outcome"], 0) + 1
        if cell["outcome"] == "broken":
            score.broken.append(cell["scenario"])
    return score


def _pct(value: float) -> str:
    return signed_percent(value)


def _scenarios(n: int) -> str:
    return f"{n} pitfall scenario" + ("" if n == 1 else "s")


def advice(s: Score) -> str:
    """When to use *s* or avoid it: fixed rules over the row's numbers (no hand-written prose).

    avoid when: a pitfall scenario is broken (avoid code written that way), or clients starve
    under overload (fairness < FAIR_MIN or a censored tail); care: a resolved req/s loss of
    SLOWER_PERCENT or more against depends, a cost ≥ COSTLIER × the cheapest strategy's, a
    degraded pitfall; otherwise use, with what speaks for it.
    """
    if s.kind == "baseline":
        import variants

        known = variants.VARIANTS.get(s.series.split("+", 1)[0])
        if known is not None and known.threads:
            return "a reference, not a contender: the sync Session in FastAPI's threadpool"
        return "a ceiling, not a contender: shows what the ORM session costs"
    avoid, caution, good = [], [], []
    if s.broken:
        avoid.append(f"handlers do {', '.join(s.broken)} (broken in the pitfall matrix)")
    starving = s.fairness is not None and s.fairness < FAIR_MIN
    if starving or s.p999_censored:
        detail = f"fairness {s.fairness:.2f}" if s.fairness is not None else "tail censored"
        avoid.append(f"users can outnumber the pool: clients starve ({detail})")
    if s.rps_resolved and s.rps_change_percent is not None:
        if s.rps_change_percent <= -SLOWER_PERCENT:
            caution.append(f"{_pct(s.rps_change_percent)} req/s vs {BASELINE}")
        elif s.rps_change_percent >= SLOWER_PERCENT:
            good.append(f"{_pct(s.rps_change_percent)} req/s vs {BASELINE}")
    if s.cost_relative is not None:
        if s.cost_relative >= COSTLIER:
            caution.append(f"costs {_pct(100 * (s.cost_relative - 1))} over the cheapest")
        elif s.cost_relative <= CHEAPEST:
            good.append("among the cheapest")
    if s.pitfalls.get("degraded"):
        caution.append(f"degraded in {_scenarios(s.pitfalls['degraded'])}")
    if s.fairness is not None and not starving and not s.p999_censored:
        good.append("fair under overload")
    if s.pitfalls and not s.broken:
        good.append("no pitfall broken")
    if avoid:
        return "avoid when " + " or when ".join(avoid) + "".join(f"; {c}" for c in caution)
    if caution:
        return "use with care: " + "; ".join(caution + good)
    return "use: " + "; ".join(good) if good else "no verdict: too little measured"


def _pitfall_text(counts: dict[str, int]) -> str:
    if not counts:
        return "–"
    return " · ".join(f"{counts[o]} {o}" for o in PITFALL_ORDER if counts.get(o))


def _cost_text(s: Score, unit: str) -> str:
    if s.cost is None:
        return "–"
    amount = f"{s.cost / 1e6:.2f} M" if unit.startswith("instructions") else f"{s.cost:.0f} µs"
    return f"×{s.cost_relative:.2f} ({amount})" if s.cost_relative else amount


def blocks(folder: Path) -> list[Block]:
    """The scorecard: a caption and one table (nothing if there is nothing to score)."""
    rows, ctx = scores(folder)
    if not rows:
        return []
    if "scenario" not in ctx:  # a folder with only a pitfall matrix
        return [
            p("Scorecard: the pitfall matrix's outcomes per strategy, and what they mean."),
            table(["strategy", "pitfalls", "use it?"],
                  [[s.series, _pitfall_text(s.pitfalls), advice(s)] for s in rows]),
        ]  # fmt: skip
    unit = ctx["cost_unit"]
    cost_head = "instructions per GET" if unit.startswith("instructions") else "server CPU/req"
    body = [
        [
            s.series,
            _cost_text(s, unit),
            "–" if s.rps is None else f"{s.rps:,.0f}: {s.verdict or '–'}",
            "–" if s.p999_us is None else tail_text(s.p999_us, s.p999_censored),
            "–" if s.fairness is None or math.isnan(s.fairness) else f"{s.fairness:.2f}",
            _pitfall_text(s.pitfalls),
            advice(s),
        ]
        for s in rows
    ]
    note = (
        "Tails: this run did not record censored requests, so p99.9 counts completed "
        "requests only and can understate the wait of starved clients. "
        if not ctx["tail_recorded"]
        else "A tail marked ≥ (censored) is a lower bound: requests were still waiting when "
        "the window closed. "
    )
    cost_note = (
        "cost: instructions the server executed per GET /todos/{id} (valgrind, cost.json)"
        if unit.startswith("instructions")
        else "cost: server CPU µs per request (the server core is saturated, so this is "
        "close to 1 / req/s, not an independent measure; `sessionbench cost` counts "
        "instructions)"
    )
    return [
        p(
            f"Scorecard — {ctx['scenario']} scenario at {ctx['users']} concurrent users (the "
            f"run's highest concurrency); cost relative to the cheapest strategy; req/s with "
            f"its verdict against {BASELINE}. How each column is read: below the table."
        ),
        table(
            [
                "strategy",
                cost_head,
                f"req/s vs {BASELINE}",
                "p99.9",
                "fairness",
                "pitfalls",
                "use it?",
            ],
            body,
        ),
        p(
            f"{cost_note[0].upper()}{cost_note[1:]}, relative to the cheapest strategy "
            f"(×1.00). req/s: median of valid trials, with the statistics module's verdict "
            f"against {BASELINE}. p99.9: median over valid trials of each trial's; fairness: "
            f"Jain's index of requests per user (1.00 = all served alike). Pitfalls: the "
            f"pitfall matrix's outcomes. {note}The last column follows fixed rules "
            f"(bench/report/scorecard.py): avoid when a pitfall is broken, "
            f"fairness < {FAIR_MIN:.2f} or "
            f"the tail is censored; care when req/s is resolved {SLOWER_PERCENT:g} % or more "
            f"below {BASELINE}, the cost ≥ ×{COSTLIER:.2f}, or a pitfall degraded."
        ),
    ]
