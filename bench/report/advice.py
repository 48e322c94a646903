"""The scorecard's last column: "use", "use with care: <condition>" or "avoid: <reason>".

The rules (stated again under the scorecard by :func:`rules_text`):

1. A deadlock (a stall of the load run) is "avoid: deadlocks at N users (mechanism)".
2. A broken pitfall that any app meets (acknowledged-before-committed, a failed commit
   answered 2xx, …: :data:`UNCONDITIONAL`) is "avoid: <what breaks>".
3. A broken pitfall that only code written a certain way meets (fan-out, background
   tasks, streaming, …: :data:`CONDITIONS`) is a condition: "use with care: no fan-out on
   one session".
4. A pitfall scenario in which every strategy of the matrix has the same outcome (with the
   same pool settings, e.g. ``pg_restart`` without pre-ping) is a pool setting's failure,
   not a strategy's: it counts against none (:func:`shared_scenarios`).
5. Fairness and tails come from the long-window overload pass only: a strategy whose
   clients starve there (Jain's index below :data:`FAIR_MIN`) is "use with care: users ≤
   pool"; one that pass did not measure is "use with care: tails: not measured in long
   windows".
6. "use" goes to every strategy with no broken pitfall that stays fair in that pass.

Speed and cost have their own columns and do not change the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.common.result_files import PitfallCell

# Each scenario says which kind it is where it registers (``bench.pitfalls.scenarios``).
from bench.pitfalls.scenarios import CONDITIONS, UNCONDITIONAL

FAIR_MIN = 0.90  # Jain's index in the long-window pass below this: clients starve
OUTCOME_RANK = {"ok": 0, "skipped": 0, "error": 1, "degraded": 2, "broken": 3}

NOT_MEASURED = "tails: not measured in long windows"


def _setting(cell: PitfallCell) -> tuple[str, Any]:
    """A pitfall cell's scenario with the pool settings it ran with (``pool_pre_ping``)."""
    return cell.scenario, cell.pool_pre_ping


def worst(cells: Iterable[PitfallCell]) -> str:
    """The worst outcome of *cells* (repeated cells count as their worst)."""
    return max((c.outcome for c in cells), key=lambda o: OUTCOME_RANK.get(o, 1), default="ok")


def shared_scenarios(cells: list[PitfallCell]) -> set[tuple[str, Any]]:
    """(scenario, pool setting) in which every variant of the matrix (two or more) had the
    same outcome, other than ok."""
    by: dict[tuple[str, Any], dict[str, list[PitfallCell]]] = {}
    for cell in cells:
        by.setdefault(_setting(cell), {}).setdefault(cell.variant, []).append(cell)
    variants = {c.variant for c in cells}
    shared = set()
    for setting, per_variant in by.items():
        outcomes = {worst(cs) for cs in per_variant.values()}
        everyone = set(per_variant) == variants and len(variants) > 1
        if everyone and len(outcomes) == 1 and "ok" not in outcomes:
            shared.add(setting)
    return shared


def own_failures(
    cells: list[PitfallCell], shared: set[tuple[str, Any]]
) -> tuple[list[str], list[str]]:
    """(broken, degraded) scenarios of one variant's *cells*, the shared ones left out."""
    per: dict[str, list[PitfallCell]] = {}
    for cell in cells:
        if _setting(cell) not in shared:
            per.setdefault(cell.scenario, []).append(cell)
    broken = [s for s, cs in per.items() if worst(cs) == "broken"]
    degraded = [s for s, cs in per.items() if worst(cs) == "degraded"]
    return broken, degraded


def verdict(
    *,
    kind: str,
    deadlock: str | None,
    broken: list[str],
    tested: bool,
    fairness: float | None,
    measured: bool,
    tail: str = "",
    users: int | None = None,
    reference: str = "",
) -> str:
    """One of "use", "use with care: …", "avoid: …" for a row (baselines: *reference*)."""
    if deadlock:
        return f"avoid: {deadlock}"
    if kind == "baseline":
        return reference
    avoid = [UNCONDITIONAL.get(s, f"{s} broken") for s in broken if s not in CONDITIONS]
    if avoid:
        return "avoid: " + "; ".join(avoid)
    care = [CONDITIONS[s] for s in broken if s in CONDITIONS]
    if not tested:
        care.append("pitfalls not tested")
    if not measured:
        care.append(NOT_MEASURED)
    elif fairness is not None and fairness < FAIR_MIN:
        at = f"at {users} users: " if users else ""
        care.append(f"users ≤ pool ({at}fairness {fairness:.2f}{', ' + tail if tail else ''})")
    return "use with care: " + "; ".join(care) if care else "use"


def rules_text() -> str:
    """The rules, for the scorecard's footnote (README shows it)."""
    conditional = ", ".join(sorted(CONDITIONS))
    unconditional = ", ".join(sorted(UNCONDITIONAL))
    return (
        "The last column follows fixed rules (bench/report/advice.py): "
        "a deadlock under load is *avoid: deadlocks at N users*; "
        f"a broken pitfall every app meets ({unconditional}) is *avoid*; "
        f"a broken pitfall that depends on how handlers are written ({conditional}) is a "
        "condition (*use with care: no fan-out on one session*), not a verdict; "
        "a pitfall scenario in which every strategy has the same outcome under the same pool "
        "settings (e.g. a PostgreSQL restart without pre-ping) is a pool setting's failure "
        "and counts against none; "
        f"fairness and tails come only from the long-window overload pass: Jain's index "
        f"below {FAIR_MIN:.2f} there is *use with care: users ≤ pool*, and a strategy that "
        f"pass did not run says *{NOT_MEASURED}*; "
        "*use* goes to every strategy with no broken pitfall that stays fair in that pass. "
        "Speed and cost have their own columns and do not change the verdict."
    )
