"""How CPU per request depends on the requests in flight, for two strategies whose instruction
counts do not.

``python -m bench.findings.concurrency_cost [--a context] [--b depends] [--users 1,4,32]
[--windows 8] [--out DIR | --from DIR]``

Runs ``sessionbench run`` with its co-scheduled pass only (one solo read cell per series and
user count is the price of the command; the figures below ignore them): the two servers
share one core and are loaded at the same time, at each user count, by one locust each, for
*windows* windows of 2 s. Each server reads its own CPU clock and request count at every
window edge (bench/common/tally.py), so each window gives both sides' CPU per request at the
same instants: the machine's speed swings hit both. Printed per user count: A's CPU µs per
request, B/A CPU per request (mean of the windows' log ratios, 95 % t-interval:
``stats.compare_windows``), and the same ratio for user and for system CPU alone.

The windows the co-scheduled pass drops for being unsaturated are used here too (a server
with one user waits for the network and PostgreSQL between requests: CPU per request is
still what it costs); windows dropped for steal or a failed request are not. ``--from DIR``
reads a run folder made before (any ``sessionbench run`` whose co-scheduled groups hold both
series) instead of running one.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import stats
from bench.common.arguments import comma_list, number, variant_name
from bench.common.co_record import CoMember, CoRecord, CoWindow
from bench.common.result_files import ResultFileError, RunFile, load
from bench.common.run_folder import RunFolder


@dataclass(frozen=True)
class Row:
    """B against A at one user count."""

    users: int
    windows: int
    a_cpu_us: float
    cpu: stats.Comparison
    user: stats.Comparison
    system: stats.Comparison


def _usable(window: CoWindow) -> bool:
    return not window.dropped or window.dropped.startswith("unsaturated")


Figure = Callable[[CoMember], float | None]
"""One of a member's CPU figures in a window (seconds)."""


def _per_request(side: CoMember, figure: Figure, name: str) -> float:
    value = figure(side)
    if value is None:
        raise ValueError(f"a co-scheduled window has no {name} (recorded since the kernel split)")
    return float(value) / side.requests


def rows(co: CoRecord, a: str, b: str) -> list[Row]:
    """One row per user count of the run's co-scheduled groups holding *a* and *b*."""
    windows: dict[int, list[CoWindow]] = {}
    for group in co.groups:
        if group.holds(a, b):
            kept = [w for w in group.windows if _usable(w)]
            windows.setdefault(group.users, []).extend(kept)
    out = []
    for users, kept in sorted(windows.items()):
        sides = [(w.members[a], w.members[b]) for w in kept]
        sides = [(x, y) for x, y in sides if x.requests and y.requests]
        if not sides:
            continue

        def pairs(
            figure: Figure, name: str, sides: list[tuple[CoMember, CoMember]] = sides
        ) -> list[tuple[float, float]]:
            return [(_per_request(x, figure, name), _per_request(y, figure, name))
                    for x, y in sides]  # fmt: skip

        cpu = pairs(lambda m: m.server_cpu_s, "server CPU")
        out.append(
            Row(
                users=users,
                windows=len(sides),
                a_cpu_us=1e6 * math.exp(sum(math.log(x) for x, _ in cpu) / len(cpu)),
                cpu=stats.compare_windows([cpu]),
                user=stats.compare_windows([pairs(lambda m: m.server_user_s, "user CPU")]),
                system=stats.compare_windows([pairs(lambda m: m.server_system_s, "system CPU")]),
            )
        )
    return out


def read(folder: Path) -> CoRecord:
    """The co-scheduled record of the run in *folder* (ResultFileError: one line)."""
    path = RunFolder(folder).run
    co = load(path, RunFile).coscheduled
    if co is None:
        raise ResultFileError(f"{path}: no co-scheduled pass")
    return co


def _ratio(c: stats.Comparison) -> str:
    if c.low is None or c.high is None:
        return f"{c.ratio:.3f}"
    return f"{c.ratio:.3f} ({c.low:.3f}–{c.high:.3f})"


def table(found: list[Row], a: str, b: str) -> str:
    lines = [
        f"users per server | windows | {a} CPU µs/request | {b}/{a} CPU per request "
        "(95 % CI) | user CPU | system CPU",
    ]
    for r in found:
        lines.append(
            f"{r.users:>16} | {r.windows:>7} | {r.a_cpu_us:>9.0f} | {_ratio(r.cpu):>22} | "
            f"{_ratio(r.user)} | {_ratio(r.system)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.findings.concurrency_cost")
    p.add_argument("--a", type=variant_name, default="context", help="the anchor (context)")
    p.add_argument("--b", type=variant_name, default="depends", help="compared (depends)")
    p.add_argument("--users", type=comma_list(number(int, 1)), default=[1, 4, 32])
    p.add_argument("--windows", type=number(int, 2), default=8, help="windows per user count")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="the run folder (default: a temporary one)")
    where.add_argument("--from", dest="source", type=Path, metavar="DIR",
                       help="read this run folder instead of running")  # fmt: skip
    args = p.parse_args(argv)
    if args.source is not None:
        try:
            co = read(args.source)
        except ResultFileError as exc:
            p.error(f"--from {args.source}: {exc}")
        print(table(rows(co, args.a, args.b), args.a, args.b))
        return 0
    with tempfile.TemporaryDirectory(prefix="sessionbench-concurrency-") as scratch:
        out = args.out or Path(scratch) / "run"
        cmd = [
            sys.executable, "-m", "bench.cli", "run", "--variants", f"{args.a},{args.b}",
            "--scenarios", "read", "--users", ",".join(map(str, args.users)),
            "--trials", "1", "--duration", "0.5", "--warmup", "0.3",
            "--co-anchors", args.a, "--co-group", "pairs", "--co-windows", str(args.windows),
            "--co-window", "2", "--co-budget", "0", "--out", str(out),
        ]  # fmt: skip
        print("$ " + " ".join(cmd[2:]), file=sys.stderr)
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            print(f"sessionbench run failed (exit {done.returncode}); see {out}", file=sys.stderr)
            return 1
        print(table(rows(read(out), args.a, args.b), args.a, args.b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
