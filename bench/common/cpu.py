"""CPU accounting: CPU seconds of process trees and busy time per core, between two snapshots.

A process tree's CPU time is the process's own, its live descendants', and what its
reaped children left in ``children_user``/``children_system`` (PostgreSQL backends
come and go; the postmaster reaps them).

Living processes are read at nanosecond resolution: the kernel's scheduler clock of the
whole thread group (``clock_gettime`` on the process's CPU clock, the sum of
``sum_exec_runtime`` over its threads, exited threads included), falling back to the sum
of ``/proc/<pid>/task/*/schedstat`` (first field: ns on CPU) where that clock cannot be
read. Reaped children are only visible in ``/proc/<pid>/stat`` in clock ticks (10 ms):
they keep that resolution. Within a cell the persistent pool connections' backends and
the server process live through the whole window, so only short-lived backends (none,
normally) are counted in ticks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil


def process_cpu_ns(pid: int) -> int:
    """Nanoseconds *pid* (all its threads, exited ones included) has run on a CPU."""
    try:
        # Linux encodes a process's CPU clock as ~pid << 3 | CPUCLOCK_SCHED (2).
        return time.clock_gettime_ns(((~pid) << 3) | 2)
    except OSError:
        pass
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    if not total and not Path(f"/proc/{pid}").exists():
        raise psutil.NoSuchProcess(pid)
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of *pid* and all its descendants, living (ns) or reaped (ticks)."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = process_cpu_ns(pid) / 1e9 + times.children_user + times.children_system
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in children:
        try:
            total += process_cpu_ns(child.pid) / 1e9
        except psutil.NoSuchProcess:
            continue
    return total


def tree_pids(pid: int) -> list[int]:
    """*pid* and its living descendants (empty if it is gone)."""
    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def core_busy_seconds() -> list[float]:
    """Seconds each logical CPU spent not idle since boot."""
    return [sum(t) - t.idle - getattr(t, "iowait", 0.0) for t in psutil.cpu_times(percpu=True)]


def core_steal_seconds() -> list[float]:
    """Seconds the hypervisor ran something else on each virtual CPU since boot (0 on metal)."""
    return [getattr(t, "steal", 0.0) for t in psutil.cpu_times(percpu=True)]


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds of named process trees and of every core at one moment."""

    processes: dict[str, float]
    cores: list[float]
    steal: list[float]

    @classmethod
    def take(cls, pids: Mapping[str, Iterable[int]]) -> Snapshot:
        return cls(
            {name: sum(tree_cpu_seconds(pid) for pid in group) for name, group in pids.items()},
            core_busy_seconds(),
            core_steal_seconds(),
        )

    def until(self, later: Snapshot) -> Snapshot:
        """The CPU seconds spent between this snapshot and *later*."""
        return Snapshot(
            {name: later.processes[name] - spent for name, spent in self.processes.items()},
            [b - a for a, b in zip(self.cores, later.cores, strict=True)],
            [b - a for a, b in zip(self.steal, later.steal, strict=True)],
        )


def split_cores() -> tuple[set[int], set[int]]:
    """(server cores, everything-else cores): the first allowed core alone, the rest shared.

    With a single allowed core both sets are that core (nothing can be separated).
    """
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return set(allowed), set(allowed)
    return {allowed[0]}, set(allowed[1:])


def pin(pids: Iterable[int], cores: set[int]) -> None:
    """Pin processes (and their current threads' future children) to *cores*, where allowed."""
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cores)
        except (ProcessLookupError, PermissionError, OSError):
            continue
