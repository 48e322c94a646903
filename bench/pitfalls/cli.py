"""``sessionbench pitfalls``: its flags (the command itself is ``bench.pitfalls.command``)."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import Any

from bench.common.arguments import (
    add_command,
    comma_list,
    driver_flag,
    mode_flags,
    number,
    one_of,
    variant_name,
)


def _pitfall_scenarios() -> Collection[str]:
    from bench.pitfalls.scenarios import SCENARIOS

    return SCENARIOS


pitfall_scenario = one_of("pitfall scenario", _pitfall_scenarios)


def cmd_pitfalls(args: argparse.Namespace) -> int:
    from bench.pitfalls.command import run

    return run(args)


def register(sub: Any) -> None:
    """Add ``pitfalls`` to the CLI's subparsers."""
    help = "Run the pitfall matrix: each scenario against each strategy and library."
    p = add_command(sub, "pitfalls", cmd_pitfalls, help)
    mode_flags(
        p,
        quick="few requests per scenario, 3 s soak (default; under 5 minutes for every variant)",
        full="more requests per scenario, 60 s soak",
    )
    p.add_argument(
        "--variants",
        type=comma_list(variant_name),
        help="comma-separated names (default: every strategy and library)",
    )
    p.add_argument(
        "--scenarios",
        type=comma_list(pitfall_scenario),
        help="comma-separated scenarios (default: all)",
    )
    p.add_argument(
        "--soak",
        type=number(float, 0, strict=True),
        metavar="SECONDS",
        help="soak duration (default: 3 quick, 60 full)",
    )
    p.add_argument("--pool-size", type=number(int, 1), default=10, help="pool size (default 10)")
    p.add_argument(
        "--pool-timeout",
        type=number(float, 0, strict=True),
        default=2.0,
        metavar="SECONDS",
        help="pool timeout (default 2: exhaustion shows fast)",
    )
    p.add_argument(
        "--pre-ping",
        choices=("off", "on", "both"),
        default="both",
        help="the pool's pre-ping (pool_pre_ping): off, on, or both (default): the PostgreSQL "
        "restart under off and on, every other scenario off",
    )
    p.add_argument(
        "--repeats",
        type=number(int, 1),
        metavar="N",
        help="runs of each PostgreSQL-restart cell, reported as the worst outcome with its "
        "count (default: 1 quick, 5 full)",
    )
    driver_flag(p)
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>-pitfalls)")
    p.set_defaults(mode="quick")
