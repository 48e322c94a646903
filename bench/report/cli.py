"""``sessionbench report`` and ``compare``: their flags and the one-line errors they answer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common.arguments import add_command, number, usage_error
from bench.common.run_folder import COST, RUN, RunFolder, names


def run_folder(value: str) -> Path:
    """A folder with a load run (run.json) or instruction counts (cost.json)."""
    path = Path(value)
    if not {RUN, COST} & set(RunFolder(path).results()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a run folder (neither {RUN.name} nor {COST.name})"
        )
    return path


def report_folder(value: str) -> Path:
    """A folder with a load run (run.json), a pitfall run (pitfalls.json) or a cost.json."""
    path = Path(value)
    if not RunFolder(path).results():
        raise argparse.ArgumentTypeError(f"{value!r} has none of {names()}")
    return path


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import run

    if len(args.runs) > 2:
        usage_error(f"compare takes at most two run folders, got {len(args.runs)}")
    try:
        return run(args)
    except FileNotFoundError as exc:
        usage_error(str(exc))


def cmd_report(args: argparse.Namespace) -> int:
    from bench.common.results import latest_run
    from bench.report.document import build

    try:
        folder = args.run or latest_run()
    except FileNotFoundError as exc:
        usage_error(str(exc))
    for path in build(folder, args.readme_also):
        print(path)
    if args.readme is not None:
        from bench.report.readme import update_readme

        try:
            update_readme(folder, args.readme, args.readme_also)
        except (ValueError, FileNotFoundError) as exc:
            usage_error(f"--readme: {exc}")
        print(args.readme)
    return 0


def register(sub: Any) -> None:
    """Add ``report`` and ``compare`` to the CLI's subparsers."""
    help = "Write plots, report.md and index.html into a run folder."
    p = add_command(sub, "report", cmd_report, help)
    p.add_argument(
        "run", nargs="?", type=report_folder, metavar="RUN_DIR", help="default: latest run"
    )
    p.add_argument("--readme", type=Path, metavar="FILE",
                   help="also refresh FILE's generated reference-results section")  # fmt: skip
    p.add_argument("--readme-also", type=report_folder, action="append", default=[],
                   metavar="RUN_DIR", help="add RUN_DIR's summaries to README's section "
                   "and let the scorecard and the questions read it (e.g. the overload pass, "
                   "the driver run; repeatable)")  # fmt: skip

    help = "Compare strategies within a run, or two runs cell by cell."
    p = add_command(sub, "compare", cmd_compare, help)
    p.add_argument("runs", nargs="*", type=run_folder, metavar="RUN_DIR",
                   help="none: latest run; one: within it; two: B against A")  # fmt: skip
    p.add_argument("--metric", choices=["rps", "cpu", "p50", "p99", "instructions"],
                   default="rps", help="what to compare (default rps; changes in its own unit; "
                   "instructions: the valgrind counts of cost.json)")  # fmt: skip
    p.add_argument("--baseline",
                   help="variant the others are set against (default raw; context for "
                   "instructions)")  # fmt: skip
    p.add_argument("--fail-above", type=number(float, 0), metavar="PCT",
                   help="exit 1 when B is significantly worse than A by more than PCT %% "
                        "of the metric (req/s lower; µs higher)")  # fmt: skip
