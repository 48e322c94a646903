"""``sessionbench cost``: flags (presets + overrides), the valgrind check, the run, the table.

``register(sub)`` adds the subcommand to the CLI's subparsers; ``run(args)`` is its entry.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import variants

if TYPE_CHECKING:  # imported when the command runs: the CLI (and `serve`) start fast
    from rich.table import Table

    from bench.common.result_files import CostFile, CostRow
    from bench.cost.runner import CostConfig

ENDPOINTS = ("get", "list", "multi", "write", "health")  # bench.cost.endpoints.ENDPOINTS
ROOT = Path(__file__).resolve().parent.parent.parent
LANES = max(1, min(2, os.cpu_count() or 1))

_QUICK: dict[str, Any] = {
    "variants": list(variants.VARIANTS),  # scripts/bench passes its load run's
    "endpoints": ["get", "write"],  # the quick load run's scenarios: read, write
    "clients": [1],
    "concurrent": None,
    # enough requests per repeat that CPython's own repeat-to-repeat wobble (adaptive
    # specialisation, allocator state: ~0.1–0.3 M instructions) stays near 0.1 %; 24
    # write cycles (0.2–0.26 % on context and depends) were too few
    "ops": {"get": 96, "list": 96, "multi": 24, "write": 48, "health": 96},
    "repeats": 3,
    "warmup": 32,
    "first_warmup": 8,
    # the session's own cost (no I/O, a few seconds); --full counts every group
    "operations": ["session-lifecycle"],
}
PRESETS: dict[str, dict[str, Any]] = {
    "quick": _QUICK,
    "full": _QUICK
    | {
        "variants": list(variants.VARIANTS),
        "endpoints": list(ENDPOINTS),
        "clients": [1, 16],
        "concurrent": ["get", "write"],  # the pool's waiting paths (16 clients on 10)
        # at 16 clients 96 GETs spread 0.05–0.20 % (context, depends), 192 0.02–0.11 %; write
        # cycles do not settle that way (48: 0.05–0.23 %, 96: 0.01–0.25 %): how many requests
        # are in flight when a young collection starts varies, and with it the objects the
        # collector visits (visit_reachable 322 k / 346 k / 331 k in three repeats)
        "concurrent_ops": {"get": 192},
        "operations": None,  # every group (bench.cost.results.OPERATION_GROUPS)
    },
}


def register(sub: Any) -> None:
    """Add ``cost`` to the CLI's subparsers (*sub* from ``add_subparsers``)."""
    from bench.common.arguments import (
        comma_list,
        driver_flag,
        mode_flags,
        number,
        one_of,
        variant_file_flag,
        variant_name,
    )

    help = "Count the instructions each variant's server executes per request (valgrind)."
    p = sub.add_parser("cost", help=help, description=help)
    p.set_defaults(func=run, mode="quick")
    mode_flags(
        p,
        quick="every variant, the quick load run's endpoints (get, write) at 1 client, "
        "3 repeats (default)",
        full="every variant and endpoint at 1 client, get and write also at 16 clients",
    )
    p.add_argument("--variants", type=comma_list(variant_name), help="comma-separated names")
    p.add_argument(
        "--endpoints",
        type=comma_list(one_of("endpoint", lambda: ENDPOINTS)),
        help=f"comma-separated, of {','.join(ENDPOINTS)} (default: all)",
    )
    p.add_argument(
        "--clients",
        type=comma_list(number(int, 1)),
        metavar="N[,N…]",
        help="concurrent clients (default 1; --full: 1,16)",
    )
    p.add_argument(
        "--requests",
        type=number(int, 1),
        metavar="N",
        help="operations per repeat for every endpoint (a write cycle is one)",
    )
    p.add_argument("--repeats", type=number(int, 2), metavar="K", help="repeats (default 3)")
    p.add_argument("--pool-size", type=number(int, 1), default=10, help="pool size (default 10)")
    p.add_argument(
        "--max-overflow", type=number(int, 0), default=0, help="pool overflow (default 0)"
    )
    p.add_argument(
        "--lanes",
        type=number(int, 1),
        default=LANES,
        metavar="N",
        help=f"variants measured side by side, one server and database each (default {LANES}: "
        "this machine's cores, at most 2)",
    )
    p.add_argument(
        "--keep-dumps",
        action="store_true",
        help="keep callgrind's dump files in RUN_DIR/raw/cost (0.5 MB each)",
    )
    from bench.cost import OPERATION_GROUPS

    p.add_argument(
        "--operations",
        type=_operation_groups,
        metavar="GROUP[,GROUP…]|none",
        help=f"micro-operations counted after the variants, of {','.join(OPERATION_GROUPS)} "
        "(default: session-lifecycle; --full: all)",
    )
    p.add_argument(
        "--explain",
        type=_pair,
        metavar="A,B",
        help="where A's instructions per request differ from B's, by package and function "
        "(callgrind profiles): from --out's run when it has both, else measures A and B first",
    )
    driver_flag(p)
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>-cost)")
    variant_file_flag(p)


def _operation_groups(value: str) -> list[str]:
    """``--operations``: groups of ``OPERATION_GROUPS``, or ``none`` (an empty list)."""
    from bench.common.arguments import comma_list, one_of
    from bench.cost import OPERATION_GROUPS

    if value.strip() == "none":
        return []
    groups: list[str] = comma_list(one_of("operation group", lambda: OPERATION_GROUPS))(value)
    return groups


def _pair(value: str) -> list[str]:
    """``--explain A,B``: two variant names."""
    from bench.common.arguments import comma_list, variant_name

    names: list[str] = comma_list(variant_name)(value)
    if len(names) != 2 or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"expected two different variants A,B, got {value!r}")
    return names


def explain_existing(args: argparse.Namespace) -> int:
    """``--explain A,B`` on the run in ``--out``: print and draw each row both have."""
    from bench.common.blocks import PLOTS
    from bench.common.console import console
    from bench.cost.explain import explain, explainable
    from bench.cost.explain_report import lines, pair_figure
    from bench.cost.results import load

    a, b = args.explain
    doc = load(args.out)
    clients_of = sorted({r.clients for r in doc.rows})
    done = 0
    for clients in clients_of:
        have = explainable(args.out, clients)
        for endpoint in [e for e in ENDPOINTS if (a, e) in have and (b, e) in have]:
            e = explain(args.out, a, b, endpoint, clients)
            if e is None:
                continue
            for line in lines(e):
                console.print(line, highlight=False, soft_wrap=True, markup=False)
            (args.out / PLOTS).mkdir(exist_ok=True)
            figure = pair_figure(
                e, doc, args.out / PLOTS / f"explain-{a}-vs-{b}-{endpoint}-c{clients}.png"
            )
            console.print(f"  figure: {figure}", highlight=False, soft_wrap=True)
            done += 1
    if not done:
        console.print(
            f"sessionbench: error: {args.out} has no profiles of both {a} and {b} "
            "(profiles/ is written by sessionbench cost since the explain command)",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    return 0


def config_from(args: argparse.Namespace, version: str) -> CostConfig:
    from bench.cost.measure import Plan
    from bench.cost.operations import plan_for
    from bench.cost.runner import CostConfig

    preset = PRESETS[args.mode]
    ops = dict(preset["ops"])
    if args.requests is not None:
        ops = dict.fromkeys(ops, args.requests)
    plan = Plan(
        endpoints=args.endpoints or preset["endpoints"],
        clients=args.clients or preset["clients"],
        ops=ops,
        repeats=args.repeats or preset["repeats"],
        warmup=preset["warmup"],
        first_warmup=preset["first_warmup"],
        concurrent=None if args.endpoints else preset["concurrent"],
        concurrent_ops=None if args.requests is not None else preset.get("concurrent_ops"),
    )
    # absolute: the servers under valgrind write their dumps there from their own cwd
    out = (
        args.out or ROOT / "results" / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{args.mode}-cost"
    ).resolve()
    return CostConfig(
        mode=args.mode,
        variants=args.variants or preset["variants"],
        plan=plan,
        pool_size=args.pool_size,
        max_overflow=args.max_overflow,
        out=out,
        valgrind=version,
        keep_dumps=args.keep_dumps,
        driver=args.driver,
        lanes=args.lanes,
        operations=plan_for(
            args.operations if args.operations is not None else preset["operations"],
            plan.repeats,
        ),
    )


def run(args: argparse.Namespace) -> int:
    from bench.cost.results import COST_FILE

    if args.explain and args.out and (args.out / COST_FILE).exists():
        return explain_existing(args)
    if args.explain:
        args.variants = list(args.explain)
    code = measure_run(args)
    if args.explain and code == 0:
        return explain_existing(args)
    return code


def measure_run(args: argparse.Namespace) -> int:
    from bench.common import drivers
    from bench.common.arguments import with_external
    from bench.common.console import console, progress_bar
    from bench.common.lifecycle import exit_code
    from bench.cost import valgrind
    from bench.cost.results import COST_FILE, load
    from bench.cost.runner import run_cost

    try:
        names, notes = drivers.only(
            args.variants or with_external(PRESETS[args.mode]["variants"]), args.driver,
            named=args.variants is not None,
        )  # fmt: skip
    except drivers.DriverError as exc:
        console.print(f"sessionbench: error: {exc}", highlight=False, soft_wrap=True)
        return 2
    try:
        version = valgrind.require()
    except valgrind.ValgrindMissing as exc:
        console.print(f"sessionbench: error: {exc}", highlight=False, soft_wrap=True)
        return 2
    if os.environ.get("DATABASE_URL"):
        from variants.settings import DatabaseUrl

        DatabaseUrl.parse(os.environ["DATABASE_URL"])  # a bad URL fails before the folder exists
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    args.variants = names
    config = config_from(args, version)
    args.out = config.out
    if (config.out / COST_FILE).exists():
        console.print(f"sessionbench: error: --out {config.out} already holds a cost run")
        return 2
    console.print(
        f"sessionbench cost --{config.mode}: {len(config.variants)} variants × "
        f"{len(config.plan.groups())} (endpoint, clients) rows × {config.plan.repeats} repeats, "
        f"{min(config.lanes, len(config.variants))} lane(s), under {version}"
        + (f", micro-operations {','.join(config.operations.groups)}" if config.operations else "")
        + f" → {config.out}",
        highlight=False,
    )
    started = time.monotonic()
    with progress_bar(config.steps) as progress:
        run_cost(config, progress)
    cost = load(config.out)  # what the run wrote, through its model
    console.print(cost_table(cost))
    if cost.operations:
        console.print(operations_table(cost))
    for line in concurrency_notes(cost):
        console.print(line, highlight=False)
    for name, info in cost.variants.items():
        if info.get("error"):
            console.print(f"[red]{name} failed:[/red] {info['error'][:400]}")
    status = cost.status
    console.print(
        f"cost {status} in {time.monotonic() - started:.0f} s: {config.out / COST_FILE}",
        highlight=False,
    )
    return exit_code(status)


def _base(doc: CostFile) -> dict[tuple[str, int], float]:
    return {
        (r.endpoint, r.clients): r.instructions_per_request
        for r in doc.rows
        if r.variant == "context"
    }


def cost_table(doc: CostFile) -> Table:
    from rich.table import Table

    out = Table(title="instructions per request of the server process (median of repeats)")
    for column in (
        "endpoint",
        "clients",
        "variant",
        "instr/request",
        "spread",
        "vs context",
        "requests × repeats",
    ):
        out.add_column(column, justify="left" if column in ("endpoint", "variant") else "right")
    base = _base(doc)
    order = list(ENDPOINTS)
    rows = sorted(
        doc.rows, key=lambda r: (order.index(r.endpoint), r.clients, r.instructions_per_request)
    )
    for r in rows:
        ref = base.get((r.endpoint, r.clients))
        out.add_row(
            r.endpoint,
            str(r.clients),
            r.variant,
            f"{r.instructions_per_request:,.0f}",
            f"{r.spread_percent:.2f} %",
            f"{r.instructions_per_request / ref:.3f}" if ref else "–",
            f"{r.requests} × {r.repeats}",
        )
    return out


def operations_table(doc: CostFile) -> Table:
    from rich.table import Table

    from bench.cost.report import OPERATION_HEADERS, operation_rows

    out = Table(title="instructions per micro-operation (median of repeats)")
    for column in OPERATION_HEADERS:
        out.add_column(
            column, justify="left" if column in ("group", "variant", "operation") else "right"
        )
    for row in operation_rows(doc):
        out.add_row(*row)
    return out


def concurrency_change(doc: CostFile) -> list[dict[str, Any]]:
    """Per (variant, endpoint): instructions per request at the most clients vs at the fewest,
    and whether the change exceeds the two rows' spreads added."""
    by: dict[tuple[str, str], dict[int, CostRow]] = {}
    for r in doc.rows:
        by.setdefault((r.variant, r.endpoint), {})[r.clients] = r
    changes = []
    for (variant, endpoint), levels in by.items():
        if len(levels) < 2:
            continue
        low, high = levels[min(levels)], levels[max(levels)]
        change = 100 * (high.instructions_per_request / low.instructions_per_request - 1)
        noise = low.spread_percent + high.spread_percent
        changes.append(
            {
                "variant": variant,
                "endpoint": endpoint,
                "from": min(levels),
                "to": max(levels),
                "change_percent": change,
                "noise_percent": noise,
                "changes": abs(change) > noise,
            }
        )
    return changes


def concurrency_notes(doc: CostFile) -> list[str]:
    changes = concurrency_change(doc)
    if not changes:
        return []
    moved = [c for c in changes if c["changes"]]
    median = statistics.median(c["change_percent"] for c in changes)
    lines = [
        f"concurrency: {len(moved)} of {len(changes)} (variant, endpoint) pairs change "
        f"instructions per request from {changes[0]['from']} to {changes[0]['to']} clients "
        f"beyond their repeats' spread (median change {median:+.1f} %)"
    ]
    lines += [
        f"  {c['variant']} {c['endpoint']}: {c['change_percent']:+.2f} % "
        f"(spreads ±{c['noise_percent']:.2f} %)"
        for c in moved
    ]
    return lines
