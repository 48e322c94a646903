"""``sessionbench micro``: its flags (the command itself is ``bench.micro.command``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common.arguments import add_command, variant_file_flag


def cmd_micro(args: argparse.Namespace) -> int:
    from bench.micro.command import run

    return run(args)


def register(sub: Any) -> None:
    """Add ``micro`` to the CLI's subparsers."""
    help = "Run the session micro-benchmarks (pytest-benchmark JSON)."
    p = add_command(sub, "micro", cmd_micro, help)
    p.add_argument(
        "--quick", action="store_true", help="5 rounds per benchmark instead of 10 (about 20 s)"
    )
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>-micro)")
    p.add_argument("-k", dest="select", metavar="EXPR",
                   help="only benchmarks matching this pytest -k expression")  # fmt: skip
    variant_file_flag(p)
