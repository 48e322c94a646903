"""``sessionbench pitfalls``: flags → PitfallConfig, run the matrix, print it."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from rich.table import Table

import variants
from bench.common import drivers
from bench.common.console import console, progress_bar, rel_path
from bench.common.lifecycle import exit_code
from bench.common.result_files import PitfallFile
from bench.common.results import ROOT
from bench.pitfalls.report import OUTCOME_STYLE, brief, cell_index, outcome_text, row_label, rows
from bench.pitfalls.runner import PITFALLS_FILE, PitfallConfig, PitfallRunner
from bench.pitfalls.scenarios import SCENARIOS
from variants.settings import DatabaseUrl

PITFALL_KINDS = ("strategy", "library")
"""Variant kinds the matrix covers by default (baselines have no session to get wrong)."""
SOAK = {"quick": 3.0, "full": 60.0}
"""Default soak seconds per mode (``--soak`` overrides)."""
REPEATS = {"quick": 1, "full": 5}
"""Default runs per cell of a repeated scenario (the PostgreSQL restart) per mode
(``--repeats`` overrides)."""


def config_from(args: argparse.Namespace) -> PitfallConfig:
    strategies = [v.name for v in variants.VARIANTS.values() if v.kind in PITFALL_KINDS]
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-pitfalls"
    return PitfallConfig(
        mode=args.mode,
        variants=args.variants or strategies,
        scenarios=args.scenarios or list(SCENARIOS),
        soak=args.soak if args.soak is not None else SOAK[args.mode],
        pool_size=args.pool_size,
        pool_timeout=args.pool_timeout,
        out=args.out or ROOT / "results" / run_id,
        driver=args.driver,
        pre_ping=args.pre_ping,
        repeats=args.repeats if args.repeats is not None else REPEATS[args.mode],
    )


def run(args: argparse.Namespace) -> int:
    if os.environ.get("DATABASE_URL"):
        DatabaseUrl.parse(os.environ["DATABASE_URL"])  # a bad URL fails before anything starts
    strategies = [v.name for v in variants.VARIANTS.values() if v.kind in PITFALL_KINDS]
    try:
        names, notes = drivers.only(
            args.variants or strategies, args.driver, named=args.variants is not None
        )
    except drivers.DriverError as exc:
        console.print(f"sessionbench: error: {exc}", highlight=False, soft_wrap=True)
        return 2
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    args.variants = names
    config = config_from(args)
    if (config.out / PITFALLS_FILE).exists():
        console.print(f"sessionbench: error: --out {config.out} already holds {PITFALLS_FILE}")
        return 2
    total = len(config.variants) * sum(
        config.runs_of(s) * len(config.pre_pings(s)) for s in config.scenarios
    )
    console.print(
        f"sessionbench pitfalls --{config.mode}: {len(config.scenarios)} scenarios × "
        f"{len(config.variants)} variants ({', '.join(config.variants)}), pool "
        f"{config.pool_size} with a {config.pool_timeout:g} s timeout, pre-ping "
        f"{config.pre_ping}, restart cells ×{config.repeats}, soak {config.soak:g} s "
        f"→ {rel_path(config.out)}",
        highlight=False,
    )
    with progress_bar(total) as progress:
        result = PitfallRunner(config, progress=progress).run()
    matrix = result.matrix
    console.print(matrix_table(matrix))
    status = matrix.status
    console.print(f"pitfalls {status}: {rel_path(config.out / PITFALLS_FILE)}", highlight=False)
    return exit_code(status)


def matrix_table(doc: PitfallFile) -> Table:
    """Scenario × variant: each cell's outcome (coloured) and its key numbers."""
    names = list(doc.settings.variants)
    table = Table(title="pitfall matrix (outcome · key numbers)", show_lines=True)
    table.add_column("scenario")
    for name in names:
        table.add_column(name)
    cells = cell_index(doc)
    for scenario, pre_ping in rows(doc):
        row = [row_label(doc, (scenario, pre_ping))]
        for name in names:
            cell = cells.get((scenario, pre_ping, name))
            if cell is None:
                row.append("–")
                continue
            style = OUTCOME_STYLE[cell.outcome][0]
            row.append(f"[{style}]{outcome_text(cell)}[/{style}]\n{brief(cell)}")
        table.add_row(*row)
    return table
