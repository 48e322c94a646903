"""``sessionbench run``: turn flags into a RunConfig (presets + overrides), run, summarise."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

import variants
from bench.common import drivers
from bench.common.arguments import with_external
from bench.common.console import console, progress_bar, rel_path, summary_table
from bench.common.lifecycle import exit_code
from bench.common.results import ROOT, RUN_FILE
from bench.load import coschedule, follow
from bench.load.runner import ConfigError, RunConfig, Runner
from bench.load.scenarios import SCENARIOS
from variants.settings import DatabaseUrl

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "variants": ["scoped", "depends", "context", "raw"],
        "scenarios": ["read", "write"],
        "users": [32],
        "trials": 1,
        "duration": 2.0,
        "warmup": 1.0,
        # verdicts: each strategy co-scheduled with depends and context at once; groups
        # left unresolved are loaded again while the budget lasts
        "co_anchors": ["depends", "context"],
        "co_windows": 8,
        "co_window": 2.0,
        "co_rounds": 1,
        "co_warmup": 1.0,
        "co_group": "all",
        "co_cells": [],
        "co_budget": 40.0,
        "co_max_steal": coschedule.STEAL_LIMIT,
        "co_min_busy": 100 * coschedule.SATURATED,
        "solo_scenarios": None,
    },
    "full": {
        # every measured variant and the calibration series (a known extra cost, co-scheduled
        # only: variants/calibration.py)
        "variants": [*variants.measured(), "context_plus5", "context_plus10"],
        "scenarios": list(SCENARIOS),
        "users": [32, 128],
        # Solo cells give absolute req/s and latency, read and write, one trial each (the
        # machine swings up to 2x within a minute, so trials minutes apart add little);
        # verdicts come from the co-scheduled pass.
        "solo_scenarios": ["read", "write"],
        "trials": 1,
        "duration": 1.5,
        "warmup": 0.5,
        "co_anchors": ["depends", "context"],
        # 4 windows of 3 s, not 6 of 2: a window's ratio also carries the work in flight at
        # its two edges (requests begun but not finished), and that part shrinks as 1/length.
        # In the reference of e9e57d5 (6 x 2 s), two adjacent windows merged into one of 4 s
        # had a pair spread of 1.8 % against 3.3 % for 2 s (white noise would give 2.3 %);
        # 3 s predicts ~2.3 % for the same 12 s of measurement per group
        "co_windows": 4,
        "co_window": 3.0,
        "co_rounds": 1,
        "co_warmup": 1.0,
        "co_group": "all",
        "co_cells": ["read:32", "read:128", "write:32", "write:128", "mixed:128", "multi:128"],
        "co_budget": 1380.0,
        "co_max_steal": coschedule.STEAL_LIMIT,
        "co_min_busy": 100 * coschedule.SATURATED,
    },
}


def config_from(args: argparse.Namespace) -> RunConfig:
    preset = PRESETS[args.mode]
    chosen = {key: getattr(args, key) if getattr(args, key, None) is not None else preset[key]
              for key in preset}  # fmt: skip
    chosen["variants"] = args.variants or with_external(preset["variants"])
    if getattr(args, "no_co", False) or args.remote or args.expect_workers:
        chosen["co_anchors"] = []  # co-scheduling needs every server on this machine's core
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{args.mode}"
    out = args.out or ROOT / "results" / run_id
    return RunConfig(
        mode=args.mode, pool_sizes=args.pool_size, max_overflow=args.max_overflow, out=out,
        workers=args.workers, asgi_servers=args.server, locust_processes=args.locust_processes,
        pool_queues=args.pool_queue, pool_stats=args.pool_stats, drivers=args.driver,
        expect_workers=args.expect_workers, master_bind=args.master_bind,
        master_port=args.master_port, remote=args.remote or {},
        follow=follow.limit(follow.pool_timeout()) if getattr(args, "follow", False) else 0.0,
        pool_timeout=follow.pool_timeout(), gc_freeze=getattr(args, "gc", "freeze") == "freeze",
        **chosen,
    )  # fmt: skip


def queue_refusal(config: RunConfig) -> str | None:
    """Why the pool queues asked for cannot serve a threadpool variant (None: they can).

    The FIFO and hybrid queues (variants/pool.py) are asyncio queues; a sync engine
    (``Variant.threads``) has SQLAlchemy's QueuePool only.
    """
    other = [q for q in config.pool_queues if q != "sqlalchemy"]
    sync = [v for v in config.variants if v in variants.VARIANTS and variants.get(v).threads]
    if other and sync:
        return (
            f"--pool-queue {','.join(other)} is an asyncio pool queue; {', '.join(sync)} "
            "runs a sync engine (SQLAlchemy's QueuePool only): drop it from --variants "
            "or use --pool-queue sqlalchemy"
        )
    return None


def run(args: argparse.Namespace) -> int:
    if os.environ.get("DATABASE_URL"):
        DatabaseUrl.parse(
            os.environ["DATABASE_URL"]
        )  # a bad URL fails before the run folder exists
    if args.expect_workers and args.locust_processes > 1:
        console.print(
            "sessionbench: error: --expect-workers and --locust-processes exclude "
            "each other (workers run the load)",
            highlight=False,
        )
        return 2
    if getattr(args, "follow", False) and (args.expect_workers or args.locust_processes > 1):
        console.print(
            "sessionbench: error: --follow needs one locust process (it follows the requests "
            "its own users started): drop --locust-processes / --expect-workers",
            highlight=False,
        )
        return 2
    if args.remote:
        if not os.environ.get("DATABASE_URL"):
            console.print(
                "sessionbench: error: --remote needs DATABASE_URL: the database the "
                "remote servers use (integrity checks read it)",
                highlight=False,
            )
            return 2
        args.variants = args.variants or list(args.remote)
    if args.driver and not args.remote:
        names = args.variants or with_external(PRESETS[args.mode]["variants"])
        try:
            pairs, notes = drivers.select(names, args.driver, named=args.variants is not None)
        except drivers.DriverError as exc:
            console.print(f"sessionbench: error: {exc}", highlight=False, soft_wrap=True)
            return 2
        for note in notes:
            console.print(f"note: {note}", highlight=False, soft_wrap=True)
        args.variants = list(dict.fromkeys(name for name, _ in pairs))
    config = config_from(args)
    refused = queue_refusal(config)
    if refused:
        console.print(f"sessionbench: error: {refused}", highlight=False, soft_wrap=True)
        return 2
    if (config.out / RUN_FILE).exists():
        console.print(f"sessionbench: error: --out {config.out} already holds a run")
        return 2
    solo = len(list(config.cells()))
    co = config.co_settings()
    groups = len(config.co_schedule())
    scenarios = config.solo_scenarios or config.scenarios
    console.print(
        f"sessionbench run --{config.mode}: {solo} solo cells ({len(config.series())} series × "
        f"{'/'.join(scenarios)} × {len(config.users)} user counts × {config.trials} trials, "
        f"{config.warmup:g} s warm-up + {config.duration:g} s each"
        + (f" + up to {config.follow:g} s following" if config.follow else "")
        + ")"
        + (
            f", then {groups} co-scheduled groups of {co.windows} × {co.window:g} s windows"
            + (f" (more looks at unresolved groups up to {co.budget:g} s)" if co.budget else "")
            if co is not None and groups
            else ""
        )
        + f" → {rel_path(config.out)}",
        highlight=False,
    )
    try:
        with progress_bar(config.cell_count) as progress:
            result = Runner(config, progress=progress).run()
    except ConfigError as exc:
        console.print(f"sessionbench: error: {exc}", highlight=False, soft_wrap=True)
        return 2
    run = result.file
    console.print(summary_table(run.cells))
    unmeasured = sorted({c.variant for c in run.cells
                         if (c.server_cpu or "").startswith("not measured")})  # fmt: skip
    if unmeasured:
        console.print(f"server CPU not measured for {', '.join(unmeasured)}: the remote server "
                      "exports no /metrics (serve --metrics)", highlight=False)  # fmt: skip
    for cell in run.cells:
        if cell.lingering_transactions:
            console.print(
                f"[yellow]{cell.variant} · {cell.scenario} · {cell.users} users · "
                f"trial {cell.trial}:[/yellow] {cell.reasons[0]}",
                highlight=False,
            )
    for name, info in run.variants.items():
        if info.verify is None or not info.verify.passed:
            failures = "; ".join(info.verify.failures if info.verify else [])[:300]
            console.print(f"[red]{name} failed verify and was skipped:[/red] {failures}")
    status = run.status
    console.print(f"run {status}: {rel_path(config.out / RUN_FILE)}", highlight=False)
    return exit_code(status)
