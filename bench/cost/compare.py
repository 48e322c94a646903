"""``sessionbench compare --metric instructions``: cost.json rows within a run or run vs run.

Within one run each variant is set against ``--baseline`` (default ``context``) in every
(endpoint, clients); between runs A and B every (variant, endpoint, clients) of B against
the same row of A. A change is *resolved* when it exceeds the two rows' repeat spreads
added (spread = (max − min) / median of the repeats); ``--fail-above PCT`` exits 1 when
a resolved increase exceeds PCT %. Two runs measured differently (settings, machine,
versions) get those differences printed first.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common.result_files import CostFile, CostRow
from bench.common.rundiff import differences
from bench.cost.results import COST_FILE, load

ENDPOINT_NOUN = {
    "get": "GET",
    "list": "list page",
    "multi": "multi-query GET",
    "write": "write request",
    "health": "health check",
}


@dataclass(frozen=True)
class Change:
    endpoint: str
    clients: int
    a: str  # label of A
    b: str  # label of B
    a_value: float
    b_value: float
    a_spread: float
    b_spread: float

    @property
    def change_percent(self) -> float:
        return 100 * (self.b_value / self.a_value - 1)

    @property
    def uncertainty_percent(self) -> float:
        """The repeats' spreads added: a change smaller than this is not resolved."""
        return self.a_spread + self.b_spread

    @property
    def resolved(self) -> bool:
        return abs(self.change_percent) > self.uncertainty_percent

    def verdict(self) -> str:
        noun = ENDPOINT_NOUN.get(self.endpoint, self.endpoint)
        who = f"{self.clients} client{'s' if self.clients > 1 else ''}"
        if not self.resolved:
            return (
                f"{self.b}: {self.change_percent:+.2f} % instructions per {noun} vs {self.a} "
                f"({who}) — within the repeats' spread (±{self.uncertainty_percent:.2f} %), "
                "not resolved by this run"
            )
        return (
            f"{self.b}: {self.change_percent:+.1f} % instructions per {noun} vs {self.a} "
            f"({who}, ±{self.uncertainty_percent:.2f} %)"
        )


def _change(endpoint: str, clients: int, a: str, b: str, ra: CostRow, rb: CostRow) -> Change:
    return Change(
        endpoint,
        clients,
        a,
        b,
        ra.instructions_per_request,
        rb.instructions_per_request,
        ra.spread_percent,
        rb.spread_percent,
    )


def within(doc: CostFile, baseline: str) -> list[Change]:
    rows = doc.row_index()
    changes = []
    for (variant, endpoint, clients), row in rows.items():
        base = rows.get((baseline, endpoint, clients))
        if variant != baseline and base:
            changes.append(_change(endpoint, clients, baseline, variant, base, row))
    return changes


def between(doc_a: CostFile, doc_b: CostFile) -> list[Change]:
    rows_a, rows_b = doc_a.row_index(), doc_b.row_index()
    return [
        _change(endpoint, clients, f"{variant} (A)", f"{variant} (B)", rows_a[key], row)
        for key, row in rows_b.items()
        if key in rows_a
        for variant, endpoint, clients in [key]
    ]


def latest_cost_run(root: Path) -> Path:
    """The most recently started folder under *root* whose cost.json has rows."""
    found = []
    for path in root.glob(f"*/{COST_FILE}"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if doc.get("rows"):
            found.append((doc.get("started", ""), path.parent))
    if not found:
        raise FileNotFoundError(f"no cost run under {root} (run `sessionbench cost` first)")
    return max(found)[1]


def _order(change: Change) -> tuple[Any, ...]:
    return (
        change.clients,
        list(ENDPOINT_NOUN).index(change.endpoint) if change.endpoint in ENDPOINT_NOUN else 99,
        change.b,
    )


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from bench.common.console import console
    from bench.common.results import ROOT

    try:
        paths: list[Path] = args.runs or [latest_cost_run(ROOT / "results")]
        docs = [load(path) for path in paths]
    except FileNotFoundError as exc:
        console.print(f"sessionbench: error: {exc} (no {COST_FILE}?)", highlight=False)
        return 2
    except (ValueError, json.JSONDecodeError) as exc:
        console.print(f"sessionbench: error: {exc}", highlight=False)
        return 2
    if len(docs) == 1:
        names = list(dict.fromkeys(r.variant for r in docs[0].rows))
        baseline = args.baseline or ("context" if "context" in names else names[0])
        if baseline not in names:
            console.print(
                f"sessionbench: error: --baseline {baseline!r} is not in {paths[0]}",
                highlight=False,
            )
            return 2
        changes = within(docs[0], baseline)
        title = f"{paths[0].name}: instructions per request, each variant (B) against {baseline}"
    else:
        a, b = (d.model_dump(mode="json", by_alias=True) for d in docs)  # every setting
        for line in differences(a, b):
            console.print(f"differs: {line}", highlight=False)
        changes = between(docs[0], docs[1])
        title = f"instructions per request: {paths[1].name} (B) against {paths[0].name} (A)"
    if not changes:
        console.print("sessionbench: nothing to compare (no rows in common)")
        return 1
    changes.sort(key=_order)
    out = Table(title=title)
    for column in ("endpoint", "clients", "A", "B", "A instr/req", "B instr/req", "B vs A"):
        out.add_column(
            column,
            justify="right" if column in ("clients", "A instr/req", "B instr/req") else "left",
        )
    for c in changes:
        out.add_row(
            c.endpoint,
            str(c.clients),
            c.a,
            c.b,
            f"{c.a_value:,.0f}",
            f"{c.b_value:,.0f}",
            f"{c.change_percent:+.2f} % (±{c.uncertainty_percent:.2f})"
            + ("" if c.resolved else " not resolved"),
        )
    console.print(out)
    if args.fail_above is not None:
        regressions = [c for c in changes if c.resolved and c.change_percent > args.fail_above]
        for c in regressions:
            console.print(f"regression above {args.fail_above:g} %: {c.verdict()}", highlight=False)
        return 1 if regressions else 0
    return 0
