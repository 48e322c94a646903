"""``sessionbench history``: flags, the valgrind check, the run, the steps.

``register(sub)`` adds the subcommand to the CLI's subparsers; ``run(args)`` is its entry.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


def register(sub: Any) -> None:
    """Add ``history`` to the CLI's subparsers (*sub* from ``add_subparsers``)."""
    from bench.common.arguments import comma_list, number, one_of, variant_name
    from bench.history import sets

    help = (
        "Instructions per request of session strategies across FastAPI and SQLAlchemy "
        "releases: one cached environment per version set, steps found and explained."
    )
    p = sub.add_parser("history", help=help, description=help)
    p.set_defaults(func=run)
    p.add_argument(
        "--fastapi",
        type=comma_list(str),
        metavar="V[,V…]",
        help=f"FastAPI releases, each a set over main's pins (default {','.join(sets.FASTAPI)}; "
        "'none': none)",
    )
    p.add_argument(
        "--sqlalchemy",
        type=comma_list(str),
        metavar="V[,V…]",
        help=f"SQLAlchemy releases (default {','.join(sets.SQLALCHEMY)}; 'none': none)",
    )
    p.add_argument(
        "--variants",
        type=comma_list(variant_name),
        help=f"comma-separated (default {','.join(sets.DEFAULT_VARIANTS)})",
    )
    p.add_argument(
        "--endpoints",
        type=comma_list(one_of("endpoint", lambda: ("get", "list", "multi", "write", "health"))),
        help=f"comma-separated (default {','.join(sets.DEFAULT_ENDPOINTS)})",
    )
    p.add_argument("--repeats", type=number(int, 2), default=3, metavar="K",
                   help="repeats per point: its spread (default 3)")  # fmt: skip
    p.add_argument("--requests", type=number(int, 1), metavar="N",
                   help="requests per repeat (default: cost's quick preset)")  # fmt: skip
    p.add_argument("--lanes", type=number(int, 1), default=2, metavar="N",
                   help="variants measured side by side (default 2)")  # fmt: skip
    p.add_argument(
        "--explain", type=number(int, 0), default=3, metavar="N",
        help="explain the N largest steps by package and function (default 3)",
    )  # fmt: skip
    p.add_argument(
        "--steps-only", action="store_true",
        help="find and explain the steps of --out's history again (measure nothing)",
    )  # fmt: skip
    p.add_argument("--build-only", action="store_true",
                   help="lock and build the sets' environments, measure nothing")  # fmt: skip
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the sets --out's history has done (same settings)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "results" / "history",
                   help="history folder (default results/history)")  # fmt: skip


def _versions(value: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    return () if value == ["none"] else tuple(value)


def run(args: argparse.Namespace) -> int:
    from bench.common import environments
    from bench.common.result_files import ResultFileError
    from bench.common.run_folder import RunFolder
    from bench.cost import valgrind
    from bench.history import sets
    from bench.history.runner import HistoryConfig, run_history

    chosen = sets.default_sets(
        _versions(args.fastapi, sets.FASTAPI), _versions(args.sqlalchemy, sets.SQLALCHEMY)
    )
    if args.build_only:
        return build(chosen)
    if args.steps_only:
        from bench.history.runner import HistoryRun, refresh_steps

        refresh_steps(HistoryRun.load(args.out.resolve()), args.explain)
        return 0
    try:
        version = valgrind.require()
    except valgrind.ValgrindMissing as exc:
        print(f"sessionbench: error: {exc}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    if RunFolder(out).has_history() and not args.resume:
        raise ResultFileError(f"--out {out} already holds a history (--resume to continue it)")
    import variants

    names = args.variants or list(sets.DEFAULT_VARIANTS)
    config = HistoryConfig(
        sets=chosen,
        variants=names,
        endpoints=args.endpoints or list(sets.DEFAULT_ENDPOINTS),
        repeats=args.repeats,
        out=out,
        valgrind=version,
        lanes=args.lanes,
        requests=args.requests,
        resume=args.resume,
        explain=args.explain,
        labels={n: variants.get(n).label for n in names},
    )
    print(
        f"sessionbench history: {len(chosen)} version sets × {len(names)} variants × "
        f"{len(config.endpoints)} endpoints × {config.repeats} repeats → {out}",
        file=sys.stderr,
    )
    started = time.monotonic()
    try:
        result = run_history(config)
    except environments.EnvironmentBuildError as exc:
        print(f"sessionbench: error: {exc}", file=sys.stderr)
        return 1
    status = result.doc["status"]
    print(
        f"history {status} in {time.monotonic() - started:.0f} s: {RunFolder(out).history}",
        file=sys.stderr,
    )
    return {"complete": 0, "incomplete": 130}.get(status, 1)


def build(chosen: list[Any]) -> int:
    """``--build-only``: lock and build each set's environment, timed."""
    from bench.common.environments import EnvironmentBuildError
    from bench.history import envs

    started = time.monotonic()
    failed = 0
    for s in chosen:
        began = time.monotonic()
        try:
            envs.lock(s)
            envs.environment(s).ensure()
        except EnvironmentBuildError as exc:
            print(f"history: {s.name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"history: {s.name}: ready in {time.monotonic() - began:.0f} s", file=sys.stderr)
    print(
        f"history: {len(chosen) - failed} of {len(chosen)} environments ready in "
        f"{time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return 1 if failed else 0
