"""Where ``depends`` spends the CPU that instruction counts do not show: kernel work per request.

``python -m bench.findings.kernel_cost [--users 32] [--seconds 15] [--rounds 3]``

Co-scheduled like ``run``'s co-scheduled pass: the ``context`` and ``depends`` servers
(``VariantServer``, uvicorn + uvloop + httptools, each on its own scratch database of one
embedded PostgreSQL) are pinned to the same core and loaded at the same time, each by its
own ``wrk`` (GET /todos/{random seeded id}, ``users`` connections) pinned to another core.
Per window and server it reads, per request:

- user and system CPU µs (``/proc/PID/stat`` utime, stime: every thread of the process);
- syscalls by type, counted in the kernel by ``perf stat -e 'syscalls:sys_enter_*' -p PID``
  (tracepoint counters: no ptrace, so the server runs at its own pace, unlike under
  ``strace -c``); ``epoll_wait`` + ``epoll_pwait`` calls are the event loop's iterations;
- voluntary and involuntary context switches (``/proc/PID/task/*/status``, summed), the
  thread count, and ``syscr``/``syscw`` from ``/proc/PID/io``.

Syscall and iteration counts per request do not depend on the core's speed (they do on how
many requests one loop turn batches, which co-scheduling makes alike for both); the CPU µs
are contrasts between the two servers measured in the same windows. Printed: one table of
per-request figures per server and their ratio depends/context, and the per-window ratio of
user, system and total CPU per request, to set beside the instruction ratio of
``sessionbench cost`` (user space only). Needs ``wrk``, ``perf`` and ``taskset``, and the
permission to read syscall tracepoints (root).

What it showed (FastAPI 0.163.2, CPython 3.11, shared 2-vCPU VM): the kernel is not where
``depends`` loses. Per request both servers make the same reads (4), writes (5), mmap/munmap
(2 each) and page faults (2); no futex, no thread started (5 threads each, idle): nothing
runs in the threadpool. The only extra syscall is ``getpid``, +3.9 to +5 per request: CPython
3.11's ``asyncio`` looks it up on every running-loop lookup, here the ``current_task()`` of
anyio's ``CancelScope`` that FastAPI enters around a yield dependency and of its
``checkpoint_if_cancelled()`` (user-space work that callgrind counts; a few µs of kernel).
``depends`` needs *fewer* event-loop turns per request, not more. At 32 users (two runs)
user CPU per request was 1.18× and 1.21× context's, system CPU 1.10× and 1.22× (the split
comes from ticks: ±10 % per window), total 1.16× and 1.21× (instructions: 1.115×). Same
syscalls, yet sys time grows with user time: the process as a whole runs slower per
instruction; the gap beyond the instruction ratio is not extra kernel work or loop turns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import database
from bench.common.server import VariantServer
from variants.settings import DatabaseUrl

VARIANTS = ("context", "depends")
TICK = os.sysconf("SC_CLK_TCK")
LUA = (
    "request = function()\n"
    f'  return wrk.format("GET", "/todos/" .. math.random(1, {database.SEED_ROWS}))\n'
    "end\n"
)


@dataclass(frozen=True)
class Sample:
    """Cumulative counters of one server process at one instant."""

    user: float
    system: float
    voluntary: int
    involuntary: int
    threads: int
    syscr: int
    syscw: int
    minflt: int

    @classmethod
    def take(cls, pid: int) -> Sample:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the fields after "(comm) "
        voluntary = involuntary = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                status = dict(
                    line.split(":\t", 1) for line in (task / "status").read_text().splitlines()
                )
                voluntary += int(status["voluntary_ctxt_switches"])
                involuntary += int(status["nonvoluntary_ctxt_switches"])
        io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        return cls(
            user=int(fields[11]) / TICK,
            system=int(fields[12]) / TICK,
            voluntary=voluntary,
            involuntary=involuntary,
            threads=int(fields[17]),
            syscr=int(io["syscr"]),
            syscw=int(io["syscw"]),
            minflt=int(fields[7]),
        )


@dataclass
class Window:
    """One server's counts over one window."""

    requests: int
    user: float
    system: float
    voluntary: int
    involuntary: int
    threads: int
    syscr: int
    syscw: int
    minflt: int
    syscalls: Counter[str] = field(default_factory=Counter)

    @property
    def loop_turns(self) -> int:
        return self.syscalls["epoll_wait"] + self.syscalls["epoll_pwait"]

    def per_request(self) -> dict[str, float]:
        n = self.requests
        out = {
            "user µs": 1e6 * self.user / n,
            "sys µs": 1e6 * self.system / n,
            "cpu µs": 1e6 * (self.user + self.system) / n,
            "syscalls": sum(self.syscalls.values()) / n,
            "loop turns (epoll_*wait)": self.loop_turns / n,
            "voluntary ctx sw": self.voluntary / n,
            "involuntary ctx sw": self.involuntary / n,
            "syscr (/proc io)": self.syscr / n,
            "syscw (/proc io)": self.syscw / n,
            "minor page faults": self.minflt / n,
        }
        out |= {f"  {name}": count / n for name, count in self.syscalls.items()}
        return out


def wrk(url: str, users: int, seconds: float, cpu: int, script: Path) -> subprocess.Popen[str]:
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{users}", f"-d{round(seconds)}s"]
    cmd += ["--timeout", "30s", "-s", str(script), url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_output(proc: subprocess.Popen[str]) -> str:
    """What wrk printed once it is done; RuntimeError if it saw a failed request."""
    out, _ = proc.communicate()
    if "Non-2xx" in out or "Socket errors" in out or proc.returncode:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    return out


def wrk_requests(proc: subprocess.Popen[str]) -> int:
    out = wrk_output(proc)
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(f"no request count in wrk's output:\n{out}")
    return int(match[1])


def perf_stat(pid: int, out: Path) -> subprocess.Popen[bytes]:
    cmd = ["perf", "stat", "-x,", "-o", str(out), "-e", "syscalls:sys_enter_*", "-p", str(pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_counts(proc: subprocess.Popen[bytes], out: Path) -> Counter[str]:
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    counts: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].isdigit() and int(parts[0]):
            counts[parts[2].removeprefix("syscalls:sys_enter_")] = int(parts[0])
    return counts


def window(
    servers: dict[str, VariantServer], users: int, seconds: float, load_cpu: int, tmp: Path
) -> dict[str, Window]:
    """Load every server at once for *seconds*; each one's counts over that time."""
    script = tmp / "read.lua"
    script.write_text(LUA)
    perfs = {}
    for name, server in servers.items():
        assert server.pid is not None
        perfs[name] = perf_stat(server.pid, tmp / f"{name}.perf")
    # perf stat needs a moment to attach every tracepoint; an idle server makes no syscalls
    time.sleep(1.5)
    before = {name: Sample.take(s.pid) for name, s in servers.items() if s.pid}
    loads = {name: wrk(s.base_url, users, seconds, load_cpu, script) for name, s in servers.items()}
    requests = {name: wrk_requests(proc) for name, proc in loads.items()}
    after = {name: Sample.take(s.pid) for name, s in servers.items() if s.pid}
    out = {}
    for name in servers:
        a, b = before[name], after[name]
        out[name] = Window(
            requests=requests[name],
            user=b.user - a.user,
            system=b.system - a.system,
            voluntary=b.voluntary - a.voluntary,
            involuntary=b.involuntary - a.involuntary,
            threads=b.threads,
            syscr=b.syscr - a.syscr,
            syscw=b.syscw - a.syscw,
            minflt=b.minflt - a.minflt,
            syscalls=perf_counts(perfs[name], tmp / f"{name}.perf"),
        )
    return out


@contextlib.contextmanager
def servers(url: DatabaseUrl, server_cpu: int, tmp: Path) -> Iterator[dict[str, VariantServer]]:
    """Both servers, each on its own scratch database, pinned to *server_cpu*."""
    with contextlib.ExitStack() as stack:
        started = {}
        for i, name in enumerate(VARIANTS):
            lane = asyncio.run(database.create_scratch(url, f"sessionbench_kernel{i + 1}"))
            server = VariantServer(name, lane, log_path=tmp / f"{name}.log", cpus={server_cpu})
            started[name] = stack.enter_context(server)
        yield started


def report(rounds: list[dict[str, Window]]) -> str:
    total = {name: Window(0, 0.0, 0.0, 0, 0, 0, 0, 0, 0) for name in VARIANTS}
    for r in rounds:
        for name, w in r.items():
            t = total[name]
            t.requests += w.requests
            t.user += w.user
            t.system += w.system
            t.voluntary += w.voluntary
            t.involuntary += w.involuntary
            t.threads = max(t.threads, w.threads)
            t.syscr += w.syscr
            t.syscw += w.syscw
            t.minflt += w.minflt
            t.syscalls += w.syscalls
    per = {name: total[name].per_request() for name in VARIANTS}
    keys = list(per["context"]) + [k for k in per["depends"] if k not in per["context"]]
    lines = [f"{'per request':<28}{'context':>10}{'depends':>10}{'d/c':>8}"]
    for key in keys:
        c, d = per["context"].get(key, 0.0), per["depends"].get(key, 0.0)
        if key.startswith("  ") and max(c, d) < 0.01:
            continue
        ratio = f"{d / c:8.3f}" if c else f"{'-':>8}"
        lines.append(f"{key:<28}{c:10.3f}{d:10.3f}{ratio}")
    lines.append(f"{'threads':<28}{total['context'].threads:10d}{total['depends'].threads:10d}")
    lines.append(f"{'requests':<28}{total['context'].requests:10d}{total['depends'].requests:10d}")
    lines.append("")
    lines.append("per window, depends/context per request: user, sys, cpu")
    ratios: dict[str, list[float]] = {"user µs": [], "sys µs": [], "cpu µs": []}
    for i, r in enumerate(rounds, 1):
        pc, pd = r["context"].per_request(), r["depends"].per_request()
        row = [pd[k] / pc[k] for k in ratios]
        for k, v in zip(ratios, row, strict=True):
            ratios[k].append(v)
        lines.append(f"  window {i}: " + "  ".join(f"{v:.3f}" for v in row))
    medians = [statistics.median(v) for v in ratios.values()]
    lines.append("  median:   " + "  ".join(f"{v:.3f}" for v in medians))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32, help="connections per server")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of one window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="windows")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kernel-cost-") as tmp_dir,
        database.database_url_or_embedded() as (url, _embedded),
    ):
        tmp = Path(tmp_dir)
        with servers(url, args.server_cpu, tmp) as started:
            script = tmp / "read.lua"
            script.write_text(LUA)
            warm = [
                wrk(s.base_url, args.users, args.warmup, args.load_cpu, script)
                for s in started.values()
            ]
            for proc in warm:
                wrk_requests(proc)
            rounds = []
            for i in range(args.rounds):
                rounds.append(window(started, args.users, args.seconds, args.load_cpu, tmp))
                print(f"window {i + 1}/{args.rounds} done", flush=True)
        print(report(rounds))


if __name__ == "__main__":
    main()
