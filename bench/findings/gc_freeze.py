"""What a full garbage collection costs a server, with and without ``gc.freeze()`` at start-up.

``python -m bench.findings.gc_freeze [--seconds 5] [--windows 6] [--max-windows N] [--users 32]
[--quick]``

Two ``context`` servers (``VariantServer``: uvicorn + uvloop + httptools, each on its own
scratch database of one PostgreSQL) pinned to the same core: one with
``SESSIONBENCH_GC_FREEZE=1`` (``serve`` imports the app, ``gc.collect(); gc.freeze()``, then
serves), one with ``0``. Each is loaded at the same time by its own ``wrk`` (GET
/todos/{random seeded id}) pinned to another core, for a warm-up and then *windows* windows
whose edges signal both servers back to back (``SIGUSR1``: the server's tally,
bench/common/tally.py, dumps its requests, CPU and garbage-collector CPU at that instant).
A ``sitecustomize`` on the servers' ``PYTHONPATH`` appends one line per full (generation-2)
collection to a file, for the count. A full collection comes once enough garbage has
outlived the younger generations, so a slower machine may make none in *windows* windows:
windows are then added, up to *max_windows* (default 4 × *windows*), until each server has
made one; a server that still made none is reported as such (its full collections' cost is
not measured). Printed per server: CPU µs per request, the collector's
share of that CPU, full collections per 1,000 requests and their mean CPU ms, wrk's p99 and
max latency over the whole load; then frozen/default CPU per request with its t-interval
over the windows (``stats.compare_paired``). Needs ``wrk`` and ``taskset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import database, stats, tally
from bench.common.server import GC_FREEZE_ENV, VariantServer
from bench.findings.kernel_cost import LUA, wrk, wrk_output
from variants.settings import DatabaseUrl

SIDES = {"frozen": "1", "default": "0"}
PROBE_ENV = "SESSIONBENCH_GC_PROBE"
PROBE = f"""\
import gc, os, time
_path = os.environ.get({PROBE_ENV!r})
if _path:
    def _full(phase, info, _path=_path):
        if phase == "stop" and info["generation"] == 2:
            with open(_path, "a") as out:
                out.write(f"{{time.time():.6f}}\\n")
    gc.callbacks.append(_full)
"""
"""The servers' ``sitecustomize``: the instant each full collection ends, one line each."""
LATENCY = (
    "done = function(summary, latency, requests)\n"
    '  io.write(string.format("latency p99 %d max %d\\n",'
    " latency:percentile(99), latency.max))\n"
    "end\n"
)


@dataclass
class Side:
    """One server's figures, summed over the windows."""

    requests: int = 0
    cpu_ns: int = 0
    gc_ns: int = 0
    full_gc_ns: int = 0
    full_gcs: int = 0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    def lines(self) -> list[tuple[str, str]]:
        n = self.requests
        mean = f"{self.full_gc_ns / self.full_gcs / 1e6:.1f}" if self.full_gcs else "-"
        return [
            ("requests", f"{n:d}"),
            ("CPU µs per request", f"{self.cpu_ns / n / 1e3:.1f}"),
            ("GC share of CPU", f"{100 * self.gc_ns / self.cpu_ns:.1f} %"),
            ("full collections per 1,000 req", f"{1000 * self.full_gcs / n:.3f}"),
            ("full collections", f"{self.full_gcs:d}"),
            ("mean full collection, CPU ms", mean),
            ("latency p99 ms (wrk)", f"{self.p99_ms:.1f}"),
            ("latency max ms (wrk)", f"{self.max_ms:.1f}"),
        ]


def finish(proc: subprocess.Popen[str]) -> tuple[float, float]:
    """wrk's p99 and max latency in ms (it must have seen no failed request)."""
    out = wrk_output(proc)
    found = re.search(r"latency p99 (\d+) max (\d+)", out)
    if found is None:
        raise RuntimeError(f"no latency in wrk's output:\n{out}")
    return int(found[1]) / 1e3, int(found[2]) / 1e3


def _drop(url: DatabaseUrl, db: str) -> None:
    asyncio.run(database.drop_scratch(url, db))


@contextlib.contextmanager
def servers(url: DatabaseUrl, cpu: int, tmp: Path) -> Iterator[dict[str, VariantServer]]:
    """The frozen and the default server, each on its own scratch database, pinned to *cpu*."""
    (tmp / "sitecustomize.py").write_text(PROBE)
    path = os.pathsep.join(p for p in (str(tmp), os.environ.get("PYTHONPATH", "")) if p)
    with contextlib.ExitStack() as stack:
        started = {}
        for i, (name, freeze) in enumerate(SIDES.items()):
            db = f"sessionbench_gcfreeze{i + 1}"
            lane = asyncio.run(database.create_scratch(url, db))
            stack.callback(_drop, url, db)
            env = {
                GC_FREEZE_ENV: freeze, tally.TALLY_ENV: str(tmp / f"{name}.tally"),
                PROBE_ENV: str(tmp / f"{name}.gc"), "PYTHONPATH": path,
            }  # fmt: skip
            log = tmp / f"{name}.log"
            server = VariantServer("context", lane, log_path=log, cpus={cpu}, env=env)
            started[name] = stack.enter_context(server)
        yield started


def _fulls(tmp: Path, name: str) -> list[float]:
    """When each of the *name* server's full collections ended (the probe's file)."""
    probe = tmp / f"{name}.gc"
    return [float(t) for t in probe.read_text().split()] if probe.exists() else []


def _collected(tmp: Path, name: str, until: float) -> bool:
    """Has the *name* server made a full collection between the first edge and *until*?"""
    rows = tally.read(tmp / f"{name}.tally")
    return bool(rows) and any(rows[0].at < t <= until for t in _fulls(tmp, name))


def _await_rows(tmp: Path, count: int, timeout: float = 10.0) -> None:
    """Wait until every server has dumped its tally at each of *count* edges."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(tally.read(tmp / f"{n}.tally")) >= count for n in SIDES):
            return
        time.sleep(0.05)
    raise RuntimeError(f"a server did not dump its tally at all {count} window edges")


def measure(
    url: DatabaseUrl,
    *,
    users: int,
    seconds: float,
    windows: int,
    warmup: float,
    max_windows: int | None = None,
) -> tuple[dict[str, Side], list[tuple[float, float]]]:
    """Both sides' totals and the (default, frozen) CPU µs per request of every window:
    *windows* windows, more (up to *max_windows*, default 4 × *windows*) until each
    server has made a full collection."""
    bound = max(windows, max_windows if max_windows is not None else 4 * windows)
    with tempfile.TemporaryDirectory(prefix="gc-freeze-") as tmp_dir:
        tmp = Path(tmp_dir)
        script = tmp / "read.lua"
        script.write_text(LUA + LATENCY)
        with servers(url, 0, tmp) as started:
            length = warmup + bound * seconds + 1  # wrk is stopped after the last edge
            start = time.time()
            loads = {n: wrk(s.base_url, users, length, 1, script) for n, s in started.items()}
            edges: list[float] = []
            while len(edges) <= windows or (
                len(edges) <= bound and not all(_collected(tmp, n, edges[-1]) for n in SIDES)
            ):
                edge = start + warmup + len(edges) * seconds
                time.sleep(max(0.0, edge - time.time()))
                for s in started.values():
                    assert s.pid is not None
                    os.kill(s.pid, signal.SIGUSR1)
                edges.append(edge)
            _await_rows(tmp, len(edges))
            for proc in loads.values():
                proc.send_signal(signal.SIGINT)  # wrk stops and prints its summary
            latency = {n: finish(p) for n, p in loads.items()}
            sides = {n: Side(p99_ms=lat[0], max_ms=lat[1]) for n, lat in latency.items()}
            per_window: dict[str, list[float]] = {n: [] for n in SIDES}
            for name, side in sides.items():
                rows = tally.read(tmp / f"{name}.tally")[: len(edges)]
                side.full_gcs = sum(rows[0].at < t <= rows[-1].at for t in _fulls(tmp, name))
                for a, b in itertools.pairwise(rows):
                    side.requests += b.requests - a.requests
                    side.cpu_ns += b.cpu_ns - a.cpu_ns
                    side.gc_ns += b.gc_ns - a.gc_ns
                    side.full_gc_ns += b.full_gc_ns - a.full_gc_ns
                    per_window[name].append((b.cpu_ns - a.cpu_ns) / (b.requests - a.requests))
    pairs = list(zip(per_window["default"], per_window["frozen"], strict=True))
    return sides, pairs


def report(sides: dict[str, Side], pairs: list[tuple[float, float]]) -> str:
    rows = {name: dict(side.lines()) for name, side in sides.items()}
    lines = [f"{'per server':<32}{'frozen':>10}{'default':>10}"]
    lines += [f"{k:<32}{rows['frozen'][k]:>10}{rows['default'][k]:>10}" for k in rows["frozen"]]
    ratios = [b / a for a, b in pairs]
    c = stats.compare_paired(pairs, unit="µs/request")
    interval = f"95 % CI {c.low:.3f}–{c.high:.3f}" if c.low and c.high else c.note
    lines.append("")
    lines.append(
        "frozen/default CPU per request, per window: " + " ".join(f"{r:.3f}" for r in ratios)
    )
    lines.append(f"  geometric mean {c.ratio:.3f} ({interval}, {len(pairs)} windows)")
    lines.append(f"  window spread (max/min ratio) {max(ratios) / min(ratios):.3f}")
    for name, side in sides.items():
        if not side.full_gcs:
            lines.append(
                f"NOT MEASURED: the {name} server made no full collection in {len(pairs)}"
                " windows; what one costs it is unknown (more or longer windows: --max-windows,"
                " --seconds)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32, help="connections per server")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one window")
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--max-windows",
        type=int,
        help="windows at most while a server has made no full collection (default 4 × windows)",
    )
    parser.add_argument("--quick", action="store_true", help="3 windows of 4 s, 2 s warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.windows, args.warmup = 4.0, 3, 2.0
    with database.database_url_or_embedded() as (url, _embedded):
        sides, pairs = measure(
            url,
            users=args.users,
            seconds=args.seconds,
            windows=args.windows,
            warmup=args.warmup,
            max_windows=args.max_windows,
        )
    print(report(sides, pairs))


if __name__ == "__main__":
    main()
