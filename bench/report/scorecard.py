"""The scorecard: the report's first screen, one row per series, derived from the numbers.

Per series: its cost (instructions per GET from ``cost.json`` when the folder has one,
else server CPU µs per request), relative to the cheapest strategy; req/s against
``depends`` with the statistics module's verdict ("deadlocks at N users" where the load run
recorded a stall, with req/s where it did not stall); the tail under overload (p99.9, max
and fairness from the long-window overload pass only, "≥ X" when unresolved, with the
requests that hit ``pool_timeout`` there: "k of n timed out at 30 s"); the pitfall
matrix's outcome counts; and "use", "use with care: …" or "avoid: …" from the fixed rules
of :mod:`bench.report.advice`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common.blocks import Block, p, table
from bench.common.result_files import (
    CostFile,
    LoadCell,
    PitfallCell,
    PitfallFile,
    RunFile,
    SeriesInfo,
    load,
)
from bench.common.results import TAIL_RULE, Run
from bench.common.run_folder import RUN, RunFolder
from bench.load import stalls
from bench.load.verdicts import METRICS, within
from bench.report import advice as rules
from bench.report import longwindow

BASELINE = "depends"
GET_ENDPOINT = "get"
"""cost.json's name of GET /todos/{id} (bench.cost.endpoints.ENDPOINTS)."""

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
    rps_users: int | None = None  # where rps was read, when not at the top user count
    verdict: str = ""
    tail: longwindow.Tail | None = None  # from the long-window overload pass, or none
    stall: stalls.Stall | None = None
    pitfalls: dict[str, int] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)  # shared scenarios left out
    degraded: list[str] = field(default_factory=list)

    @property
    def fairness(self) -> float | None:
        return self.tail.fairness if self.tail else None


def _ms(us: float) -> str:
    return f"{us / 1e6:.2f} s" if us >= 1e6 else f"{us / 1000:.0f} ms"


def tail_text(us: float, censored: bool) -> str:
    """A latency, "≥ X (censored)" when it is only a lower bound."""
    return f"≥ {_ms(us)} (censored)" if censored else _ms(us)


def _tail_cell(tail: longwindow.Tail | None) -> str:
    """p99.9 · max of the long-window pass, "≥ X" where only a lower bound; then its pool
    timeouts ("k of n timed out at 30 s") where the followed pass counted any."""
    if tail is None:
        return "not measured"
    text = " · ".join(
        ("≥ " if key in tail.censored else "") + _ms(us)
        for key, us in (("p99.9", tail.p999_us), ("max", tail.max_us))
    )
    timed_out = tail.timeouts.text() if tail.timeouts else ""
    return f"{text}; {timed_out}" if timed_out else text


def headline_scenario(doc: RunFile) -> str | None:
    """The scenario the scorecard reads: ``read`` (GET by id, as the cost run) if run."""
    present = [s for s in doc.settings.scenarios if any(c.scenario == s for c in doc.cells)]
    return "read" if "read" in present else (present[0] if present else None)


def _twin(doc: RunFile, series: str, variant: str) -> str:
    """*variant* run with the same axis values as *series* (``depends+pool32`` …)."""
    info = doc.variants.get(series)
    own = str(info.variant) if info and info.recorded("variant") else series.split("+", 1)[0]
    return variant + series.removeprefix(own)


def get_instructions(folder: Path) -> dict[str, float]:
    """Instructions per GET by id per variant from *folder*'s cost.json (fewest clients)."""
    path = RunFolder(folder).cost
    if not path.exists():
        return {}
    counts = load(path, CostFile).per_request()
    return {variant: n for (variant, endpoint), n in counts.items() if endpoint == GET_ENDPOINT}


def _pitfalls(folder: Path) -> tuple[dict[str, list[PitfallCell]], set[tuple[str, Any]]]:
    """The pitfall cells per variant, and the scenarios every variant shares."""
    path = RunFolder(folder).pitfalls
    if not path.exists():
        return {}, set()
    doc = load(path, PitfallFile)  # validated: a damaged file is one line, exit 2
    by_variant: dict[str, list[PitfallCell]] = {}
    for cell in doc.cells:
        by_variant.setdefault(cell.variant, []).append(cell)
    return by_variant, rules.shared_scenarios(doc.cells)


def _kind(recorded: dict[str, SeriesInfo], series: str) -> str:
    """*series*' kind (strategy, baseline) as the run recorded it, else as the registry has it."""
    import variants

    info = recorded.get(series)
    if info is not None and info.recorded("kind"):
        return str(info.kind)
    known = variants.VARIANTS.get(series.split("+", 1)[0])
    return known.kind if known else "strategy"


def scores(folder: Path, extra: Sequence[Path] = ()) -> tuple[list[Score], dict[str, Any]]:
    """The scorecard's rows for *folder* and what they were read from (for the caption);
    tails and fairness from the long-window overload pass among *folder* and *extra*."""
    pitfalls, shared = _pitfalls(folder)
    context: dict[str, Any] = {"pitfalls": bool(pitfalls), "shared": sorted(
        {scenario for scenario, _ in shared})}  # fmt: skip
    if not RunFolder(folder).has(RUN):
        out = [_with_pitfalls(Score(name, _kind({}, name)), pitfalls, shared)
               for name in pitfalls]  # fmt: skip
        return out, context
    run = Run.read(folder)
    doc = run.file
    scenario = headline_scenario(doc)
    if scenario is None:
        return [], context
    top = max(c.users for c in doc.cells if c.scenario == scenario)
    context |= {"scenario": scenario, "users": top}
    instructions = get_instructions(folder)
    context["cost_unit"] = "instructions/GET" if instructions else "server CPU µs/req"
    tails = longwindow.tails([folder, *extra], scenario)
    context["long_window"] = next(iter(tails.values()), None)
    stalled = stalls.stalls(doc)
    verdicts: dict[tuple[str, str], Any] = {}
    names = doc.series_names()
    for base in {_twin(doc, s, BASELINE) for s in names}:
        if base in names:
            for row in within(run, base, METRICS["rps"]):
                if row.scenario == scenario and row.users == top:
                    verdicts[base, row.b] = row
    out = []
    for name in names:
        group = [c for c in doc.cells if (c.variant, c.scenario, c.users) == (name, scenario, top)]
        valid = [c for c in group if c.ok]
        score = Score(name, _kind(doc.variants, name), stall=stalled.get(name))
        score.tail = tails.get(longwindow.key(doc.variants.get(name), name))
        if instructions:  # measured apart from the load run: shown whatever the load did
            score.cost = instructions.get(name.split("+", 1)[0])
        if not valid:  # e.g. a stall at the top: req/s where it did not stall
            valid, score.rps_users = _highest_valid(doc.cells, name, scenario)
        if valid:
            score.rps = statistics.median(c.measured_rps for c in valid)
            if not instructions:
                cpu = [v for c in valid if (v := c.server_us) is not None]
                score.cost = statistics.median(cpu) if cpu else None
        compared = verdicts.get((_twin(doc, name, BASELINE), name))
        if compared is not None:
            score.verdict = compared.comparison.verdict()
            # The verdict's own ratio: one number for one quantity.
            score.rps_change_percent = compared.comparison.change_percent
            score.rps_resolved = bool(getattr(compared.comparison, "significant", False))
        elif name == _twin(doc, name, BASELINE):
            score.verdict = "baseline"
        out.append(_with_pitfalls(score, pitfalls, shared))
    strategies = [s.cost for s in out if s.kind == "strategy" and s.cost]
    cheapest = min(strategies) if strategies else None
    for s in out:
        if s.cost and cheapest:
            s.cost_relative = s.cost / cheapest
    # Ranked by the verdict's ratio against the baseline (the co-scheduled pass where the run
    # has one), not by one solo cell's req/s: that carries the machine's swings.
    out.sort(key=lambda s: (s.kind == "baseline", -_rank(s)))
    return out, context


def _highest_valid(
    cells: list[LoadCell], name: str, scenario: str
) -> tuple[list[LoadCell], int | None]:
    """*name*'s valid cells of *scenario* at the highest user count that has any."""
    valid = [c for c in cells if c.ok and (c.variant, c.scenario) == (name, scenario)]
    if not valid:
        return [], None
    users = max(c.users for c in valid)
    return [c for c in valid if c.users == users], users


def _with_pitfalls(
    score: Score, pitfalls: dict[str, list[PitfallCell]], shared: set[tuple[str, Any]]
) -> Score:
    cells = pitfalls.get(score.series.split("+", 1)[0], [])
    for cell in cells:
        score.pitfalls[cell.outcome] = score.pitfalls.get(cell.outcome, 0) + 1
    score.broken, score.degraded = rules.own_failures(cells, shared)
    return score


def advice(s: Score) -> str:
    """One of "use", "use with care: …", "avoid: …" for *s* (:mod:`bench.report.advice`)."""
    reference = ""
    if s.kind == "baseline":
        import variants

        known = variants.VARIANTS.get(s.series.split("+", 1)[0])
        reference = (
            "reference: the sync Session in FastAPI's threadpool"
            if known is not None and known.threads
            else "a ceiling, not a contender"
        )
    deadlock = f"{s.stall.headline()} ({s.stall.mechanism()})" if s.stall else None
    tail = s.tail
    return rules.verdict(
        kind=s.kind,
        deadlock=deadlock,
        broken=s.broken,
        tested=bool(s.pitfalls),
        fairness=s.fairness,
        measured=tail is not None,
        tail=f"max {'≥ ' if 'max' in tail.censored else ''}{_ms(tail.max_us)}" if tail else "",
        users=tail.users if tail else None,
        reference=reference,
    )


def _pitfall_text(counts: dict[str, int]) -> str:
    if not counts:
        return "–"
    return " · ".join(f"{counts[o]} {o}" for o in PITFALL_ORDER if counts.get(o))


def _cost_text(s: Score, unit: str) -> str:
    if s.cost is None:
        return "–"
    amount = f"{s.cost / 1e6:.2f} M" if unit.startswith("instructions") else f"{s.cost:.0f} µs"
    return f"×{s.cost_relative:.3f} ({amount})" if s.cost_relative else amount


def _rank(s: Score) -> float:
    if s.verdict == "baseline":
        return 1.0
    if s.rps_change_percent is not None:
        return 1 + s.rps_change_percent / 100
    return 0.0


def _short(verdict: str) -> str:
    """A verdict without its interval: "1.19x faster", "not resolved by this run"."""
    return verdict.split(" (", 1)[0]


def _rps_text(s: Score) -> str:
    rps = "–" if s.rps is None else f"{s.rps:,.0f}"
    if s.stall is not None:
        where = f"; {rps} at {s.rps_users} users" if s.rps_users and s.rps is not None else ""
        return f"{s.stall.headline()}{where}"
    if s.rps_users is not None:
        return f"{rps} at {s.rps_users} users"
    return "–" if s.rps is None else f"{rps}: {_short(s.verdict) or '–'}"


def blocks(folder: Path, extra: Sequence[Path] = ()) -> list[Block]:
    """The scorecard: a caption, one table and how to read it (nothing if nothing to score)."""
    rows, ctx = scores(folder, extra)
    if not rows:
        return []
    if "scenario" not in ctx:  # a folder with only a pitfall matrix
        return [
            p("Scorecard: the pitfall matrix's outcomes per strategy, and what they mean."),
            table(["strategy", "pitfalls", "use it?"],
                  [[s.series, _pitfall_text(s.pitfalls), advice(s)] for s in rows]),
            p(rules.rules_text()),
        ]  # fmt: skip
    unit = ctx["cost_unit"]
    cost_head = "instructions per GET" if unit.startswith("instructions") else "server CPU/req"
    body = [
        [
            s.series,
            _cost_text(s, unit),
            _rps_text(s),
            _tail_cell(s.tail),
            "–" if s.fairness is None or math.isnan(s.fairness) else f"{s.fairness:.2f}",
            _pitfall_text(s.pitfalls),
            advice(s),
        ]
        for s in rows
    ]
    long: longwindow.Tail | None = ctx["long_window"]
    tail_note = (
        f"p99.9 · max and fairness: from the long-window overload pass ({long.folder}: "
        f"{long.users} users, pool {long.pool}, {long.window_s:g} s windows, same pool queue "
        f"and driver), never from the short windows of this run; ≥ X: a lower bound, "
        f"requests were still waiting when the window closed; fairness is Jain's index of "
        f"requests per user (1.00 = all served alike); {TAIL_RULE}"
        + (
            "; k of n timed out at T s: requests of the followed windows answered 503 after "
            "waiting `pool_timeout` for a connection, a result, counted at their latency"
            if any(s.tail and s.tail.timeouts and s.tail.timeouts.count for s in rows)
            else ""
        )
        + ". "
        if long
        else "p99.9 · max and fairness: not measured in long windows (no overload pass whose "
        "windows can show them was given), and never read from short windows. "
    )
    cost_note = (
        "cost: instructions the server executed per GET /todos/{id} (valgrind, cost.json)"
        if unit.startswith("instructions")
        else "cost: server CPU µs per request (the server core is saturated, so this is "
        "close to 1 / req/s, not an independent measure; `sessionbench cost` counts "
        "instructions)"
    )
    shared = ctx.get("shared") or []
    notes = [
        f"{cost_note[0].upper()}{cost_note[1:]}, relative to the cheapest strategy "
        f"(×1.00). req/s: median of valid trials, with the statistics module's verdict "
        f"against {BASELINE} (intervals in the tables below); \"deadlocks at N users\": the "
        f"server stopped answering with its threads and connections held (a stall, a result "
        f"of the run), req/s then from the highest user count where it did not. {tail_note}"
        f"Pitfalls: the pitfall matrix's outcomes"
        + (f"; shared by every strategy, so counted against none: {', '.join(shared)}"
           if shared else "")
        + ".",
        rules.rules_text(),
    ]  # fmt: skip
    if any(s.stall and s.stall.threads for s in rows):
        notes.append(stalls.MECHANISM)
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
                "p99.9 · max",
                "fairness",
                "pitfalls",
                "use it?",
            ],
            body,
        ),
        *(p(n) for n in notes),
    ]
