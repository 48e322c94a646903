"""Verdicts of the co-scheduled pass: window pairs of req/s per core, decided together.

One computation, read by the report's tables, the scorecard, ``compare`` and the cost
report's cross-check: every non-anchor series against each anchor it was loaded with (and
the anchors among themselves), from the windows the machine guard kept, decided together by
the Benjamini–Hochberg rule over all of a run's comparisons, each comparison's p-value
multiplied by the looks it had (the pass measures unresolved groups again:
bench/load/coschedule.py; bench/common/stats.py: ``compare_windows``,
``false_discoveries``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

from bench.common.co_record import CoGroup, CoMember, CoRecord
from bench.common.stats import Comparison, compare_windows, false_discoveries

CO_UNIT = "req/s per core"


@dataclass(frozen=True)
class CoComparison:
    scenario: str
    users: int
    a: str
    b: str
    a_value: float  # median req/s per core of A over the window pairs
    b_value: float
    comparison: Comparison
    looks: int = 1  # times the pass measured it and looked whether it was resolved


def base(name: str) -> str:
    """The variant of a series name (``depends+pool10`` → ``depends``)."""
    return name.split("+", 1)[0]


def looks(co: CoRecord | None, a: str, b: str, scenario: str, users: int) -> int:
    """The latest look (``look`` of a group record: 1 for the planned pass, k for its k-th
    follow-up) among the groups where A and B were loaded together."""
    return max(
        (
            g.look for g in (co.groups if co else [])
            if (g.scenario, g.users) == (scenario, users) and g.holds(a, b)
        ),
        default=1,
    )  # fmt: skip


def window_capacity(side: CoMember) -> float | None:
    """Requests per second of the side's own server CPU in one co-scheduled window."""
    return side.capacity


def _kept_groups(co: CoRecord | None, a: str, b: str, scenario: str, users: int) -> list[CoGroup]:
    """The valid groups of (*scenario*, *users*) in which A and B were loaded together."""
    return [
        g for g in (co.groups if co else [])
        if (g.scenario, g.users) == (scenario, users) and g.ok and g.holds(a, b)
    ]  # fmt: skip


def co_pairs(
    co: CoRecord | None, a: str, b: str, scenario: str, users: int
) -> list[list[tuple[float, float]]]:
    """(A, B) req/s per core of every kept window in which both ran, one list per group."""
    out = []
    for group in _kept_groups(co, a, b, scenario, users):
        pairs = []
        for window in group.windows:
            if window.dropped:
                continue
            ca = window.members[a].capacity
            cb = window.members[b].capacity
            if ca and cb:
                pairs.append((ca, cb))
        if pairs:
            out.append(pairs)
    return out


def planned(co: CoRecord | None) -> list[tuple[str, int, str, str]]:
    """(scenario, users, A, B) of every direct comparison the pass's groups were loaded for,
    whether or not a window of it was kept: A an anchor, each anchor pair once."""
    if not co:
        return []
    anchors = co.settings.anchors

    def first(a: str, b: str) -> bool:  # each anchor pair once, in the anchors' order
        return base(b) not in anchors or anchors.index(base(a)) < anchors.index(base(b))

    return sorted({
        (g.scenario, g.users, a, b)
        for g in co.groups
        for a in g.members if base(a) in anchors
        for b in g.members if b != a and first(a, b)
    })  # fmt: skip


def missing(co: CoRecord | None) -> list[tuple[str, int, str, str]]:
    """The planned comparisons no kept window pair measured (every window of their groups
    dropped, or every group failed): no verdict, and not in :func:`co_comparisons`."""
    return [k for k in planned(co) if not co_pairs(co, k[2], k[3], k[0], k[1])]


def co_comparisons(co: CoRecord | None) -> list[CoComparison]:
    """Every co-scheduled comparison of the run, decided together (Benjamini–Hochberg over
    looks-adjusted p-values)."""
    if not co:
        return []
    anchors = co.settings.anchors
    keys = planned(co)
    found = []
    for scenario, users, a, b in keys:
        groups = co_pairs(co, a, b, scenario, users)
        if not groups:
            continue
        comparison = compare_windows(groups, higher_is_better=True, unit=CO_UNIT)
        flat = [p for g in groups for p in g]
        a_value = statistics.median(x for x, _ in flat)
        b_value = statistics.median(y for _, y in flat)
        seen = looks(co, a, b, scenario, users)
        found.append(CoComparison(scenario, users, a, b, a_value, b_value, comparison, seen))
    found += _chained(found, anchors)
    decided = false_discoveries([r.comparison for r in found], [r.looks for r in found])
    return [replace(r, comparison=c) for r, c in zip(found, decided, strict=True)]


def _chained(found: list[CoComparison], anchors: list[str]) -> list[CoComparison]:
    """X against a later anchor K where X was loaded with the first anchor F only: the chain
    (K against F) turned around, then (X against F); two independent estimates."""
    if len(anchors) < 2:
        return []
    direct = {(r.scenario, r.users, r.a, r.b): r for r in found}
    out = []
    for (scenario, users, a, x), row in direct.items():
        if base(a) != anchors[0] or base(x) in anchors:
            continue
        first, suffix = a, a[len(anchors[0]) :]  # the same axis value (``+pool10``)
        for k in (later + suffix for later in anchors[1:]):
            link = direct.get((scenario, users, first, k))
            if link is None or (scenario, users, k, x) in direct:
                continue
            design = (
                f"chained through {first}: ({x} vs {first}) ÷ ({k} vs {first}), "
                f"{row.comparison.n_a} + {link.comparison.n_a} window pairs"
            )
            comparison = link.comparison.inverted().chained(row.comparison, design)
            seen = row.looks + link.looks - 1  # each link's new windows are a new look
            out.append(
                CoComparison(scenario, users, k, x, link.b_value, row.b_value, comparison, seen)
            )
    return out


def co_comparison(
    co: CoRecord | None, a: str, b: str, scenario: str, users: int
) -> CoComparison | None:
    """B against A, turned around from A against B where only that was measured."""
    for r in co_comparisons(co):
        if (r.scenario, r.users, r.a, r.b) == (scenario, users, a, b):
            return r
        if (r.scenario, r.users, r.a, r.b) == (scenario, users, b, a):
            return CoComparison(scenario, users, a, b, r.b_value, r.a_value,
                                r.comparison.inverted(), r.looks)  # fmt: skip
    return None


def timed_prediction(
    co: CoRecord | None, a: str, b: str, scenario: str, users: int
) -> float | None:
    """B's req/s per core against A's that B's server-timed extra work predicts (a calibration
    series against its base): A's cost per request plus B's measured extra cost per request,
    window by window, geometric mean (None: B timed no extra work)."""
    logs = []
    for group in _kept_groups(co, a, b, scenario, users):
        for window in group.windows:
            sa, sb = window.members[a], window.members[b]
            extra = sb.calibration_cpu_s
            if window.dropped or not extra or not sa.requests or not sb.requests:
                continue
            base = sa.server_cpu_s / sa.requests
            logs.append(math.log(base / (base + extra / sb.requests)))
    return math.exp(statistics.fmean(logs)) if logs else None
