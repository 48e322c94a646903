"""``sessionbench run``: its flags (the command itself is ``bench.load.command``)."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import Any

from bench.common.arguments import (
    add_command,
    asgi_server,
    comma_list,
    mode_flags,
    number,
    one_of,
    port,
    variant_name,
)
from variants.settings import DRIVERS, POOL_QUEUES


def _load_scenarios() -> Collection[str]:
    from bench.load.scenarios import SCENARIOS

    return SCENARIOS


scenario_name = one_of("scenario", _load_scenarios)


def co_cell(value: str) -> str:
    """``scenario:users``, both checked."""
    scenario, sep, users = value.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{value!r}: expected SCENARIO:USERS, e.g. read:32")
    return f"{scenario_name(scenario)}:{number(int, 1)(users)}"


def cmd_run(args: argparse.Namespace) -> int:
    from bench.load.command import run

    return run(args)


def master_address(value: str) -> tuple[str, int]:
    from bench.load.distributed import parse_master

    try:
        return parse_master(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from exc


def remote_servers(value: str) -> dict[str, str]:
    from bench.common.metrics import parse_remote

    try:
        remote = parse_remote(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    for name in remote:
        variant_name(name)
    return remote


def cmd_worker(args: argparse.Namespace) -> int:
    from bench.load.distributed import run_worker

    return run_worker(*args.master)


def register(sub: Any) -> None:
    """Add ``run`` to the CLI's subparsers."""
    help = "Run the load benchmark matrix (quick by default) into a run folder."
    p = add_command(sub, "run", cmd_run, help)
    mode_flags(
        p,
        quick="3 strategies + raw, read and write, 32 users, 1 trial, co-scheduled verdicts "
        "(default)",
        full="every variant, solo read/write at users 32,128, co-scheduled verdicts in every "
        "scenario",
    )
    p.add_argument("--variants", type=comma_list(variant_name), help="comma-separated names")
    p.add_argument("--scenarios", type=comma_list(scenario_name), help="comma-separated scenarios")
    p.add_argument(
        "--users", type=comma_list(number(int, 1)), help="comma-separated concurrency levels"
    )
    p.add_argument("--trials", type=number(int, 1), help="trials per cell")
    p.add_argument(
        "--duration", type=number(float, 0, strict=True), help="measured seconds per cell"
    )
    p.add_argument("--warmup", type=number(float, 0), help="discarded seconds before measuring")
    p.add_argument(
        "--pool-size",
        type=comma_list(number(int, 1)),
        default=[10],
        metavar="N[,N…]",
        help="pool size per server process; several values = an axis (default 10)",
    )
    p.add_argument(
        "--max-overflow", type=number(int, 0), default=0, help="pool overflow (default 0)"
    )
    p.add_argument(
        "--workers",
        type=comma_list(number(int, 1)),
        default=[1],
        metavar="N[,N…]",
        help="server worker processes; several values = an axis (default 1)",
    )
    p.add_argument(
        "--server",
        type=comma_list(asgi_server),
        default=["uvicorn"],
        metavar="NAME[,NAME…]",
        help="uvicorn and/or granian (default uvicorn)",
    )
    p.add_argument(
        "--pool-queue",
        type=comma_list(one_of("pool queue", lambda: POOL_QUEUES)),
        default=["sqlalchemy"],
        metavar="NAME[,NAME…]",
        help="how the pool hands out connections: sqlalchemy, fifo, hybrid (default sqlalchemy)",
    )
    p.add_argument(
        "--driver",
        type=comma_list(one_of("driver", lambda: DRIVERS)),
        metavar="NAME[,NAME…]",
        help="database driver: asyncpg and/or psycopg; several values = an axis "
        "(default: each variant's own, asyncpg)",
    )
    p.add_argument(
        "--pool-stats",
        action="store_true",
        help="servers record pool wait/hold times and barging per cell (costs ~1-3 %% CPU)",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="follow every request started in the window to its end (users keep running, at "
        "most pool_timeout + 5 s): no censored tail; 503 pool timeouts count as timeouts",
    )
    p.add_argument(
        "--gc",
        type=one_of("garbage collector setting", lambda: ("freeze", "default")),
        default="freeze",
        help="freeze: servers freeze their startup heap before serving (gc.freeze(); a full "
        "collection then skips the ~100,000 imported objects); default: the interpreter's "
        "collector as is (default freeze)",
    )
    p.add_argument(
        "--locust-processes",
        type=number(int, 1),
        default=1,
        metavar="N",
        help="load generator processes (locust --processes; default 1)",
    )
    p.add_argument("--expect-workers", type=number(int, 1), default=0, metavar="N",
                   help="locust distributed: start a master, wait for N `sessionbench worker`s "
                   "before each cell")  # fmt: skip
    p.add_argument(
        "--master-bind",
        default="127.0.0.1",
        metavar="HOST",
        help="address the locust master listens on (default 127.0.0.1)",
    )
    p.add_argument(
        "--master-port",
        type=port,
        default=5557,
        metavar="PORT",
        help="port the locust master listens on (default 5557)",
    )
    p.add_argument("--remote", type=remote_servers, metavar="VARIANT=URL[,…]",
                   help="benchmark servers started elsewhere (`serve --metrics`); needs "
                   "DATABASE_URL of their database")  # fmt: skip
    p.add_argument(
        "--co-anchors",
        type=comma_list(variant_name),
        metavar="NAME[,NAME…]",
        help="co-scheduled pass: every series is loaded together with these on one core and "
        "compared in the same windows (verdicts come from it; default: the mode's)",
    )
    p.add_argument("--no-co", action="store_true", help="skip the co-scheduled pass")
    p.add_argument("--co-windows", type=number(int, 2), metavar="N",
                   help="windows per co-scheduled group (default: the mode's)")  # fmt: skip
    p.add_argument("--co-window", type=number(float, 0.2), metavar="S",
                   help="seconds per co-scheduled window (default: the mode's)")  # fmt: skip
    p.add_argument("--co-rounds", type=number(int, 1), metavar="N",
                   help="rounds of the co-scheduled groups (default: the mode's)")  # fmt: skip
    p.add_argument("--co-budget", type=number(float, 0), metavar="S",
                   help="seconds the co-scheduled pass may take: groups with an unresolved "
                   "comparison are loaded again while it lasts (default: the mode's; 0: no "
                   "second look)")  # fmt: skip
    p.add_argument("--co-max-steal", type=number(float, 0), metavar="PERCENT",
                   help="drop a co-scheduled window in which any core lost more than this to "
                   "steal (default: the mode's, 5; 100: keep every window)")  # fmt: skip
    p.add_argument(
        "--co-group",
        type=one_of("co-scheduled grouping", lambda: ("pairs", "first", "all")),
        help="pairs: each series with one anchor at a time; first: with the first anchor only "
        "(the others chained through it); all: with every anchor at once",
    )
    p.add_argument(
        "--solo-scenarios",
        type=comma_list(scenario_name),
        help="the scenarios with solo cells (default: the mode's; quick: every scenario)",
    )
    p.add_argument(
        "--co-cells",
        type=comma_list(co_cell),
        metavar="SCENARIO:USERS[,…]",
        help="the cells the co-scheduled pass covers (default: every scenario at every users)",
    )
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>)")
    p.set_defaults(mode="quick")

    p = add_command(sub, "worker", cmd_worker,
                    "Run a locust worker for a `run --expect-workers` master.")  # fmt: skip
    p.add_argument(
        "--master",
        type=master_address,
        required=True,
        metavar="HOST[:PORT]",
        help="the runner's locust master (port default 5557)",
    )
