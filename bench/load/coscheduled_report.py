"""The report's section on the co-scheduled pass: verdicts, their design, and their checks.

Reads ``run.json``'s ``coscheduled`` record (bench/load/coschedule.py) through
:func:`bench.load.verdicts.co_rows` (one computation for every table that shows a verdict)
and, when the folder has one, ``cost.json``'s instructions per request: the prediction each
co-scheduled ratio is set against, and the calibration series' known extra cost.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from bench.common.blocks import Block, bullets, h2, p, table
from bench.common.co_record import CoGroup, CoRecord
from bench.common.pairs import base, co_pairs, missing, timed_prediction
from bench.common.result_files import CostFile, load
from bench.common.run_folder import RunFolder
from bench.common.stats import MARGIN_PERCENT
from bench.load.verdicts import Row, co_rows

# the cost endpoint whose instructions predict a scenario's cost per request
SCENARIO_ENDPOINT = {"read": "get", "write": "write", "multi": "multi"}
DECIDED_GOAL = {"read": 0.90, "write": 0.90, "mixed": 0.75, "multi": 0.75}


def instructions(folder: Path) -> dict[tuple[str, str], float]:
    """(variant, endpoint) -> instructions per request at the fewest clients in cost.json."""
    path = RunFolder(folder).cost
    return load(path, CostFile).per_request() if path.exists() else {}


def predicted(counts: dict[tuple[str, str], float], row: Row) -> float | None:
    """B's req/s per core against A's as the instruction counts predict it (A/B instructions)."""
    endpoint = SCENARIO_ENDPOINT.get(row.scenario)
    a = counts.get((row.a.split("+", 1)[0], endpoint or ""))
    b = counts.get((row.b.split("+", 1)[0], endpoint or ""))
    return a / b if a and b else None


def decided(row: Row) -> bool:
    return row.comparison.significant or row.comparison.equivalent


def spread(co: CoRecord, row: Row) -> float | None:
    """Standard deviation of the log ratio per window pair (≈ the CV of one pair's ratio)."""
    logs = [math.log(b / a) for g in co_pairs(co, row.a, row.b, row.scenario, row.users)
            for a, b in g]  # fmt: skip
    return statistics.stdev(logs) if len(logs) > 1 else None


def dropped(co: CoRecord) -> dict[str, int]:
    """Why windows were dropped, with counts (machine guard and failed requests)."""
    out: dict[str, int] = {}
    for group in co.groups:
        for window in group.windows:
            if window.reason:
                out[window.reason] = out.get(window.reason, 0) + 1
    return out


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _agrees(row: Row, prediction: float | None) -> str:
    c = row.comparison
    if prediction is None or c.low is None or c.high is None:
        return "–"
    return "yes" if c.low <= prediction <= c.high else "no"


def section(folder: Path, co: CoRecord | None, *, gc_freeze: bool = False) -> list[Block]:
    """The co-scheduled section of *folder*'s report (empty without a co-scheduled pass);
    *gc_freeze*: the run's servers froze their startup heap."""
    if not co or not co.groups:
        return []
    rows = co_rows(co)
    counts = instructions(folder)
    s = co.settings
    windows = sum(len(g.windows) for g in co.groups)
    drops = dropped(co)
    invalid = [g for g in co.groups if not g.ok]
    spreads = [x for r in rows if (x := spread(co, r)) is not None]
    looks = sum(1 for g in co.groups if g.look > 1)
    blocks: list[Block] = [
        h2("Verdicts: co-scheduled comparisons"),
        p(
            "Each strategy shares the server core with the anchors it is compared with "
            f"({', '.join(s.anchors)}, group mode '{s.group}'); all are loaded at once, "
            "each by its own locust with the same users, and measured in the same "
            f"{s.windows} windows of {s.window_s:g} s after {s.warmup_s:g} s of "
            f"discarded warm-up (start-up {s.start_margin_s:g} s before that). "
            + (
                f"The pass may take {s.budget_s:g} s: after the planned groups, every group "
                "with an unresolved comparison is loaded again (a new look, the same windows "
                f"again) while that lasts; {looks} groups were such looks. "
                if s.budget_s
                else ""
            )
            + (
                "Every server froze its startup heap before serving (gc.freeze: a full "
                "collection then skips the imported modules' objects, which cost ~65 ms per "
                "collection and were the main noise between windows). "
                if gc_freeze
                else "Servers ran the interpreter's default collector (--gc default). "
            )
            + "The figure is "
            "req/s per core: requests each server completed per second of its own CPU, read "
            "by the server itself at each window edge (the inverse of its CPU cost per request "
            "at saturation; it does not need the core shared fairly). Verdict: B/A per window "
            "pair, mean of the log ratios, 95 % t-interval with the effective number of "
            "windows when consecutive windows correlate (lag-1); 'no difference' when the "
            f"interval lies within ±{MARGIN_PERCENT:g} % (TOST). Multiplicity: the "
            f"Benjamini–Hochberg rule over all {len(rows)} comparisons of this run (of the "
            "claims it allows, at most 5 % are expected to be false); a comparison looked at k "
            "times enters with k times its p-value (Bonferroni over looks), so looking again "
            "until resolved cannot inflate its error rate."
        ),
        bullets(
            [
                f"Groups: {len(co.groups)} ({len(invalid)} left out: "
                + _left_out(invalid)
                + f"); windows: {windows}, dropped: "
                + (", ".join(f"{n} ({why})" for why, n in sorted(drops.items())) or "none")
                + f" (machine guard: steal above {s.steal_limit_percent:g} % of a window, "
                f"the members' servers below {s.saturated_percent:g} % of their core, "
                "or a failed request).",
                "Spread of one window pair's ratio (standard deviation of the log ratio), "
                f"median over comparisons: {100 * statistics.median(spreads):.1f} %"
                if spreads
                else "Spread: not enough windows.",
                *_decided_counts(rows, missing(co)),
            ]
        ),
    ]
    for anchor in s.anchors:
        mine = [r for r in rows if base(r.a) == anchor]
        mine += [
            Row(r.scenario, r.users, r.b, r.a, r.b_value, r.a_value, r.comparison.inverted())
            for r in rows
            if base(r.b) == anchor
        ]
        if not mine:
            continue
        body = []
        for r in sorted(mine, key=lambda r: (r.scenario, r.users, -r.comparison.ratio)):
            guess = predicted(counts, r)
            body.append(
                [
                    r.scenario, str(r.users), r.b, f"{r.b_value:,.0f}", _ratio(guess),
                    _agrees(r, guess), r.comparison.verdict(),
                ]
            )  # fmt: skip
        blocks += [
            p(f"Against {anchor} (req/s per core of B; instructions predict A/B instructions):"),
            table(
                [
                    "scenario",
                    "users",
                    "B",
                    "req/s per core",
                    "instructions predict",
                    "agrees",
                    f"B vs {anchor}",
                ],
                body,
            ),
        ]
    blocks += _calibration(co, rows, counts)
    blocks += _kernel_split(co)
    return blocks


def _kernel_split(co: CoRecord, scenario: str = "read", users: int = 32) -> list[Block]:
    """Where each series' CPU per request goes in one cell: user and system time (the
    kernel's split, clock ticks) and context switches, summed over the kept windows."""
    sums: dict[str, list[float]] = {}
    for g in co.groups:
        if (g.scenario, g.users, g.status) != (scenario, users, "ok"):
            continue
        for w in g.windows:
            if w.dropped:
                continue
            for name, m in w.members.items():
                if m.server_user_s is None or not m.requests:
                    continue
                acc = sums.setdefault(name, [0.0, 0.0, 0.0, 0.0])
                acc[0] += m.requests
                acc[1] += m.server_user_s
                acc[2] += m.server_system_s or 0
                acc[3] += m.context_switches or 0
    if not sums:
        return []
    body = [
        [name, f"{n:,.0f}", f"{1e6 * u / n:.0f}", f"{1e6 * k / n:.0f}",
         f"{100 * k / (u + k):.0f} %" if u + k else "–", f"{x / n:.2f}"]
        for name, (n, u, k, x) in sorted(sums.items(), key=lambda kv: kv[1][1] / kv[1][0])
    ]  # fmt: skip
    return [
        p(
            f"Where the CPU goes ({scenario}, {users} users, co-scheduled windows): per "
            "request, user-space and kernel (system) CPU as the kernel splits it, and context "
            "switches. Instruction counts (cost) see user space only, so a strategy whose "
            "kernel share differs is farther from its instruction ratio."
        ),
        table(
            ["series", "requests", "user µs", "system µs", "system share", "switches/request"],
            body,
        ),
    ]


def _left_out(invalid: list[CoGroup]) -> str:
    reasons = [f"{' + '.join(g.members)}: {(g.reasons or ['?'])[0]}" for g in invalid]
    return "; ".join(reasons[:3]) or "none"


def _decided_counts(rows: list[Row], unmeasured: list[tuple[str, int, str, str]]) -> list[str]:
    """How many strategy comparisons (calibration series left out) end in a verdict, per
    scenario and user count; a planned comparison no kept window measured counts as one
    without a verdict."""
    out = []
    strategies = [r for r in rows if not r.b.startswith("context_plus")]
    lost = [k for k in unmeasured if not k[3].startswith("context_plus")]
    for scenario, users in sorted({(r.scenario, r.users) for r in strategies} |
                                  {(k[0], k[1]) for k in lost}):  # fmt: skip
        mine = [r for r in strategies if (r.scenario, r.users) == (scenario, users)]
        gone = [k for k in lost if (k[0], k[1]) == (scenario, users)]
        n = sum(decided(r) for r in mine)
        goal = DECIDED_GOAL.get(scenario)
        out.append(
            f"{scenario} at {users} users: {n} of {len(mine) + len(gone)} comparisons end in a "
            "verdict"
            + (
                f" ({len(gone)} not measured: every window of "
                + ", ".join(sorted({k[3] for k in gone}))
                + " dropped)"
                if gone
                else ""
            )
            + (f" (goal ≥ {100 * goal:.0f} %)" if goal else "")
        )
    return out


def _calibration(
    co: CoRecord, rows: list[Row], counts: dict[tuple[str, str], float]
) -> list[Block]:
    """The calibration series against context: found, in the right direction, at the size
    its server-timed extra cost predicts? (and what its instruction count predicts)"""
    body = []
    for r in rows:
        if r.a != "context" or not r.b.startswith("context_plus"):
            continue
        timed = timed_prediction(co, r.a, r.b, r.scenario, r.users)
        c = r.comparison
        direction = "right" if c.significant and c.ratio < 1 else "not found"
        body.append(
            [r.scenario, str(r.users), r.b, _ratio(timed), _agrees(r, timed),
             _ratio(predicted(counts, r)), _ratio(c.ratio), f"{_ratio(c.low)}–{_ratio(c.high)}",
             direction]
        )  # fmt: skip
    if not body:
        return []
    return [
        p(
            "Calibration: context with a known extra CPU cost per request (variants/"
            "calibration.py: schema validation and serialisation, timed by the server in "
            "every window). The design is sensitive when it finds the extra cost in the right "
            "direction at the size the timed cost predicts. The instruction count's prediction "
            "is shown beside it; it is not the yardstick: the time an instruction takes "
            "depends on the code (this tight loop runs ~4x the instructions per µs of a whole "
            "request) and on the requests in flight (depends/context: 1.12x the instructions, "
            "0.96x the CPU at 1 user, 1.31x at 32; docs/findings/concurrency-cost.md)."
        ),
        table(
            [
                "scenario",
                "users",
                "series",
                "timed cost predicts",
                "in CI",
                "instructions predict",
                "measured",
                "95 % CI",
                "direction",
            ],
            body,
        ),
    ]
