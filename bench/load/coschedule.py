"""Co-scheduled windows: the compared servers share one core and are loaded at the same time.

**Why.** This VM's vCPU changes speed by up to 2× within a minute, with no steal to show it:
a solo window of A and one of B taken seconds apart differ by the machine as much as by
the strategies (per-round ratio CV 10–15 % in the solo design). Here the members of a
*group* (a strategy and the anchors it is compared with) run on the server core together,
each loaded by its own locust process with the same users, and every window is measured
on all of them at the same instants: every swing of the core's speed hits every side.

**What the figure means.** Per window and member: server CPU time / requests completed, the
cost of one request at saturation. The verdict compares its inverse, *requests per
server-CPU-second* ("req/s per core": the req/s the strategy would serve with the core to
itself), as B against A, one log ratio per window. It does not need the core shared
fairly: a side that idles for a moment hands the other more than its share, which moves
their req/s but not their cost per request. Each side's req/s and CPU share in the window
are recorded beside it (``share``: its part of the members' CPU).

**Schedule.** Rounds × scenarios × users × groups, each group once per round, in an order
rotated per round; per group: every member's database reset to the seed, one locust per
member started so that the shared window opens ``START_MARGIN`` + warm-up seconds later
(locust start-up and the servers' warm-up fall before it and are discarded), then
``windows`` back-to-back windows of ``window`` seconds, CPU snapshots of every member at
each edge. The whole schedule (start, edges, dropped windows) is kept in run.json
(``coscheduled``).

**Each member has its own database** (a scratch database per series), so the integrity
checks of every cell hold per server: acknowledged writes in the table, acknowledged
updates visible, no idle-in-transaction connections, statements as expected.

**Machine guard.** A window in which any core's steal exceeds ``STEAL_LIMIT`` % of the
window (20 %: stolen time does not advance the servers' CPU clocks, so less hits both sides
alike), in which the members' servers together used less than ``SATURATED`` of their core
(something else ran there, or the load generators could not keep them busy: the cost at
saturation was not measured), or in which a member failed a request, is dropped from every
member of its group (so from both sides of each pair), counted and reported. A member
whose locust reported start-up too late for the window, or whose integrity checks fail,
leaves the whole group out of the verdicts (the group record says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import variants
from bench.common import cpu, database, histograms, integrity, pairs, processes, tally
from bench.common.co_record import (
    CoGroup,
    CoMember,
    CoRecord,
    CoSettingsRecord,
    CoSide,
    CoWindow,
    IntegrityCheck,
)
from bench.common.server import ServerError, VariantServer
from bench.load import protocol
from bench.load.scenarios import SCENARIOS
from variants.settings import DatabaseUrl

START_MARGIN = 3.0  # s from launching the locusts to the warm-up's start (their start-up)
STEAL_LIMIT = 20.0
"""% of a window any core may lose to steal before the window is dropped. Each side's figure
is requests per second of its own CPU clock, which stolen time does not advance, so moderate
steal hits both sides of a pair alike: in the 2026-12-02 reference, window pairs with 5–15 %
steal spread about their comparison's median no more than those with less (rms 3.3 % vs
3.6 %; 122 and 782 pairs), and dropping them at 5 % cost 74 of 502 windows."""
CALIBRATION_SCENARIO = "read"  # the calibration series run in this scenario only
SATURATED = 0.85  # share of their core the members' servers must use together in a window
LINGER_GRACE = 2.0
STOP_TIMEOUT = 10


@dataclass(frozen=True)
class CoSettings:
    """How the co-scheduled pass runs (recorded in run.json)."""

    anchors: list[str]
    """Every other series is compared with each of these, in the same windows."""
    windows: int = 6
    window: float = 2.0
    warmup: float = 2.0
    rounds: int = 1
    group: str = "pairs"
    """``pairs``: each series with one anchor at a time; ``all``: a series with every anchor
    at once; ``first``: each series with the first anchor only, the other anchors with it too
    (comparisons against the others are chained through it: half the groups)."""
    cells: tuple[str, ...] = ()
    """``scenario:users`` cells the pass covers (empty: every scenario at every user count)."""
    kinds: tuple[str, ...] = ("strategy", "library", "calibration")
    """Variant kinds compared with the anchors (baselines such as raw are ceilings, not
    contenders: their solo cells show them)."""
    steal_limit: float = STEAL_LIMIT
    saturated: float = SATURATED
    """Share of their core the members' servers must use together in a kept window (0: any)."""
    """% of a window any core may lose to steal before the window is dropped (100: never)."""
    budget: float = 0.0
    """Seconds the whole pass may take. After the planned groups, every group with an
    unresolved comparison is loaded again (a new *look*: more windows for the same
    comparisons) while the budget lasts; 0: the planned groups only. Each comparison's
    p-value is multiplied by its looks before the run's comparisons are decided together
    (bench/common/pairs.py), so looking again cannot inflate the error rate."""

    def record(self) -> CoSettingsRecord:
        """These settings as run.json records them."""
        return CoSettingsRecord(
            anchors=self.anchors, windows=self.windows, window_s=self.window,
            warmup_s=self.warmup, rounds=self.rounds, group=self.group,
            start_margin_s=START_MARGIN, steal_limit_percent=self.steal_limit,
            saturated_percent=100 * self.saturated, kinds=list(self.kinds),
            cells=list(self.cells), budget_s=self.budget,
        )  # fmt: skip


def axis_suffix(name: str) -> str:
    """The axis part of a series name (``depends+pool10`` → ``+pool10``; none → "")."""
    return name[len(name.split("+", 1)[0]) :]


def groups(series: Sequence[str], settings: CoSettings) -> list[tuple[str, ...]]:
    """The groups loaded together: every series with the anchors, anchors among themselves;
    with an axis (``--pool-size 10,32`` …), within each axis value (``depends+pool10`` is
    the anchor of ``scoped+pool10``).

    Calibration series (``variants`` kind ``calibration``) go with ``context`` only (all of
    them in one group when ``group`` is ``all``)."""
    out: list[tuple[str, ...]] = []
    for suffix in dict.fromkeys(axis_suffix(n) for n in series):
        out += _groups([n for n in series if axis_suffix(n) == suffix], settings, suffix)
    return out


def _groups(series: Sequence[str], settings: CoSettings, suffix: str) -> list[tuple[str, ...]]:
    anchors = [a + suffix for a in settings.anchors if a + suffix in series]
    if not anchors:
        return []
    out: list[tuple[str, ...]] = []
    for i, a in enumerate(anchors):  # anchors against each other
        out += [(a, b) for b in anchors[i + 1 :]]

    def kind(name: str) -> str:
        known = variants.VARIANTS.get(name.split("+", 1)[0])
        return known.kind if known is not None else "strategy"

    others = [name for name in series if name not in anchors and kind(name) in settings.kinds]
    calibrations = [n for n in others if kind(n) == "calibration"]
    others = [n for n in others if n not in calibrations]
    if settings.group == "all" and others:
        out = []  # every group holds every anchor: their comparisons come from all groups
    for name in others:
        if settings.group == "first":
            out.append((anchors[0], name))
        elif settings.group == "all" or len(anchors) == 1:
            out.append((*anchors, name))
        else:
            out += [(a, name) for a in anchors]
    context = "context" + suffix
    if calibrations and context in anchors:  # context plus a known cost: with context only
        out += (
            [(context, *calibrations)]
            if settings.group == "all"
            else [(context, c) for c in calibrations]
        )
    return out


def schedule(
    series: Sequence[str], scenarios: Sequence[str], users: Sequence[int], settings: CoSettings
) -> Iterator[tuple[int, str, int, tuple[str, ...]]]:
    """(round, scenario, users, group) in run order; the group order rotates every round."""
    plan = groups(series, settings)
    for r in range(1, settings.rounds + 1):
        for scenario in scenarios:
            for n in users:
                if settings.cells and f"{scenario}:{n}" not in settings.cells:
                    continue
                shift = (r - 1) % len(plan) if plan else 0
                for group in plan[shift:] + plan[:shift]:
                    if scenario != CALIBRATION_SCENARIO and any(map(_calibration, group)):
                        continue  # one scenario proves the design's sensitivity
                    yield r, scenario, n, group


def unresolved(
    co: CoRecord, planned: Sequence[tuple[int, str, int, tuple[str, ...]]]
) -> list[tuple[str, int, tuple[str, ...]]]:
    """The planned groups (each once) that another look could resolve: a comparison of
    their cell between two of their members, or chained to a non-anchor member, that the
    run's comparisons so far leave unresolved."""
    anchors = set(co.settings.anchors)
    open_ = [
        (r.scenario, r.users, r.a, r.b) for r in pairs.co_comparisons(co)
        if not (r.comparison.significant or r.comparison.equivalent)
    ]  # fmt: skip
    open_ += pairs.missing(co)  # every window dropped so far: not measured at all
    out: list[tuple[str, int, tuple[str, ...]]] = []
    for _, scenario, users, group in planned:
        members = set(group)
        if (scenario, users, group) in out:
            continue
        if any(
            (s, u) == (scenario, users)
            and ({a, b} <= members or (b in members and pairs.base(b) not in anchors))
            for s, u, a, b in open_
        ):
            out.append((scenario, users, group))
    return out


def by_cell_rounds(
    todo: Sequence[tuple[str, int, tuple[str, ...]]],
) -> list[tuple[str, int, tuple[str, ...]]]:
    """*todo* reordered so that each cell's first group comes before any cell's second, and
    so on (planned order within a rank): a budget that runs out leaves no cell without a
    look while another had several."""
    rank: dict[tuple[str, int], int] = {}
    ranked = []
    for item in todo:
        cell = (item[0], item[1])
        rank[cell] = rank.get(cell, 0) + 1
        ranked.append((rank[cell], item))
    return [item for _, item in sorted(ranked, key=lambda pair: pair[0])]


def _calibration(name: str) -> bool:
    known = variants.VARIANTS.get(name.split("+", 1)[0])
    return known is not None and known.kind == "calibration"


@dataclass
class Member:
    """One series of the pass: its server on its own database."""

    name: str
    variant: str
    url: DatabaseUrl
    server: VariantServer
    monitor: integrity.Monitor | None = None
    orm: bool = True
    pool_limit: int = 10


@dataclass
class CoPass:
    """Runs the co-scheduled pass of one run (after its solo cells)."""

    settings: CoSettings
    out: Path
    placement_server: set[int]
    placement_others: set[int]
    server_env: Callable[[str], dict[str, str]]
    """series name -> the environment its server gets (pool settings, driver …)."""
    series_variant: dict[str, str]
    pool_limits: dict[str, int]
    pg_pid: int | None = None
    members: dict[str, Member] = field(default_factory=dict)
    locusts: list[subprocess.Popen[bytes]] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)
    """Every scratch database created (dropped at the end, also for a server that failed)."""

    def start(self, url: DatabaseUrl, names: Sequence[str]) -> list[str]:
        """One server per series on its own scratch database; the names that started."""
        ready = []
        for i, name in enumerate(names):
            db = f"sessionbench_co{i + 1}"
            lane = asyncio.run(database.create_scratch(url, db))
            self.scratch.append(db)
            variant = self.series_variant[name]
            env = self.server_env(name) | {tally.TALLY_ENV: str(self._tally(name))}
            server = VariantServer(
                variant, lane, log_path=self.out / "logs" / f"co-{name}.log",
                cpus=self.placement_server, env=env,
            )  # fmt: skip
            try:
                server.start()
            except ServerError:
                continue
            member = Member(name, variant, lane, server, orm=variants.get(variant).orm,
                            pool_limit=self.pool_limits[name])  # fmt: skip
            member.monitor = integrity.Monitor(lane)
            self.members[name] = member
            ready.append(name)
        return ready

    def _tally(self, name: str) -> Path:
        return self.out / "raw" / "co-tally" / f"{name}.txt"

    def stop(self, url: DatabaseUrl) -> None:
        for locust in self.locusts:
            processes.stop(locust)
        for member in self.members.values():
            member.server.stop()
            if member.monitor is not None:
                member.monitor.close()
        for db in self.scratch:
            with contextlib.suppress(Exception):
                asyncio.run(database.drop_scratch(url, db))
        self.members.clear()
        self.scratch.clear()

    def group(
        self,
        index: int,
        round_: int,
        scenario: str,
        users: int,
        names: tuple[str, ...],
        look: int = 1,
    ) -> CoGroup:
        """Load every member of *names* at once; the group's record (*look*: which look)."""
        s = self.settings
        record = CoGroup(
            round=round_, scenario=scenario, users=users, members=list(names), order=index,
            window_s=s.window, status="ok", reasons=[], look=look,
        )  # fmt: skip
        members = [self.members[n] for n in names]
        for m in members:
            if not m.server.alive():
                try:
                    m.server.start()
                except ServerError as exc:
                    record.status, record.reasons = "failed", [f"{m.name}: {exc}"]
                    return record
            assert m.monitor is not None
            stray = m.monitor.open_transactions([m.server.app_name])
            if stray:
                m.monitor.terminate(b.pid for b in stray)
            m.monitor.prepare()
        at = time.time() + START_MARGIN + s.warmup
        raws = {}
        launched = {}
        for m in members:
            raw = self.out / "raw" / f"co{index:04d}-{scenario}-u{users}-{m.name}"
            raw.mkdir(parents=True, exist_ok=True)
            raws[m.name] = raw
            launched[m.name] = self._locust(m, scenario, users, raw, at)
        pids: dict[str, list[int]] = {f"server:{m.name}": [m.server.pid or 0] for m in members}
        pids |= {f"locust:{n}": [p.pid] for n, p in launched.items()}
        if self.pg_pid:
            pids["postgres"] = [self.pg_pid]
        edges = [at + i * s.window for i in range(s.windows + 1)]
        seen = {m.name: len(tally.read(self._tally(m.name))) for m in members}
        snapshots = []
        for edge in edges:
            _sleep_until(edge)
            for m in members:  # back to back: each server reads its own count and CPU
                with contextlib.suppress(ProcessLookupError, TypeError):
                    os.kill(m.server.pid, signal.SIGUSR1)  # type: ignore[arg-type]
            snapshots.append((time.time(), cpu.Snapshot.take(pids)))
        time.sleep(0.05)
        tallies = {m.name: tally.read(self._tally(m.name))[seen[m.name] :] for m in members}
        for name, locust in launched.items():
            try:
                locust.wait(s.window * s.windows + STOP_TIMEOUT + 30)
            except subprocess.TimeoutExpired:
                processes.stop(locust)
                record.reasons.append(f"{name}: locust did not finish in time")
        self.locusts.clear()
        results = {n: protocol.read(raws[n], protocol.RESULT_FILE) for n in names}
        record.sides = {m.name: self._side(m, results[m.name], raws[m.name]) for m in members}
        record.windows = _windows(snapshots, members, results, tallies, s.steal_limit, s.saturated)
        bad = [n for n, side in record.sides.items() if side.status != "ok"]
        if bad or record.reasons:
            record.status = "invalid"
            record.reasons += [f"{n}: {r}" for n in bad for r in record.sides[n].reasons]
        return record

    def _side(self, m: Member, result: dict[str, Any] | None, raw: Path) -> CoSide:
        """One member's whole-run record: counts, integrity, lingering transactions."""
        reasons: list[str] = []
        if result is None:
            log = processes.tail(raw / "locust.log")
            return CoSide(status="failed", reasons=[f"locust wrote no results:\n{log}"])
        assert m.monitor is not None
        unsure = set(result["unsure"])
        patched = {i: t for i, t in result["patched"].items() if i not in unsure}
        deadline = time.monotonic() + LINGER_GRACE
        while (left := m.monitor.open_transactions([m.server.app_name])) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        observed = m.monitor.observe(m.server.app_name, todo_ids=patched)
        checks = integrity.check_cell(
            result["counts"], observed, seed_rows=m.monitor.seed_rows,
            pool_limit=m.pool_limit, orm=m.orm, patched=patched,
        )  # fmt: skip
        reasons += [f"integrity: {c.name}: {c.detail}" for c in checks if not c.ok]
        late_s = result.get("late_s", 0.0)
        if late_s > 0:
            reasons.append(f"its users were all running only {late_s:.1f} s "
                           "after the window opened")  # fmt: skip
        if left:
            reasons.append(f"{len(left)} transactions still open {LINGER_GRACE:g} s "
                           "after the load stopped: server restarted")  # fmt: skip
            m.server.stop(timeout=5)
            m.monitor.terminate(b.pid for b in left)
            with contextlib.suppress(ServerError):
                m.server.start()
        return CoSide(
            status="invalid" if reasons else "ok",
            reasons=reasons,
            integrity=[IntegrityCheck(**c.as_dict()) for c in checks],
            late_s=late_s,
            failures_by_phase={p: sum(v.values()) for p, v in result["failures_by_phase"].items()},
            requests_all_phases=sum(result["counts"].values()),
        )

    def _locust(
        self, m: Member, scenario: str, users: int, raw: Path, at: float
    ) -> subprocess.Popen[bytes]:
        s = self.settings
        duration = s.window * s.windows
        run_time = math.ceil(START_MARGIN + s.warmup + duration + STOP_TIMEOUT + 20)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(SCENARIOS[scenario].locustfile),
            "--headless", "-u", str(users), "-r", str(users), "-t", f"{run_time}s",
            "--host", m.server.base_url, "--stop-timeout", str(STOP_TIMEOUT),
            "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        env = os.environ | protocol.environ(
            raw, duration=duration, window_at=at, windows=s.windows, seed_rows=database.SEED_ROWS
        )
        with (raw / "locust.log").open("wb") as log:
            locust = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        cpu.pin([locust.pid], self.placement_others)
        self.locusts.append(locust)
        return locust


def _windows(
    snapshots: list[tuple[float, cpu.Snapshot]],
    members: list[Member],
    results: dict[str, dict[str, Any] | None],
    tallies: dict[str, list[tally.Row]],
    steal_limit: float = STEAL_LIMIT,
    saturated: float = SATURATED,
) -> list[CoWindow]:
    """Per window: every member's requests and server CPU (its own tally), errors and µs
    histogram (its locust), the machine's steal and busy cores, and why the window is
    dropped (None: kept)."""
    out = []
    for i, ((t0, a), (t1, b)) in enumerate(itertools.pairwise(snapshots)):
        spent = a.until(b)
        elapsed = t1 - t0
        steal = [100 * x / elapsed for x in spent.steal]
        own = {m.name: _tally_window(tallies[m.name], i) for m in members}
        server_cpu = {}
        for m in members:
            mine = own[m.name]
            server_cpu[m.name] = mine[1] if mine else spent.processes[f"server:{m.name}"]
        total_cpu = sum(server_cpu.values()) or 1.0
        figures: dict[str, CoMember] = {}
        for m in members:
            result = results[m.name]
            subs = (result or {}).get("sub_windows") or []
            sub = subs[i] if i < len(subs) else None
            hist = histograms.merge([sub["histogram"]]) if sub else None
            recorded = hist.get_total_count() if hist is not None else 0
            mine = own[m.name]
            requests = mine[0] if mine else recorded
            figures[m.name] = CoMember(
                requests=requests,
                requests_source="server tally" if mine else "locust",
                requests_recorded=recorded,
                calibration_cpu_s=round(mine[2], 6) if mine else None,
                server_user_s=round(mine[3], 3) if mine else None,
                server_system_s=round(mine[4], 3) if mine else None,
                context_switches=mine[5] if mine else None,
                gc_cpu_s=round(mine[6], 6) if mine else None,
                full_gc_cpu_s=round(mine[7], 6) if mine else None,
                errors=sub["failures"] if sub else None,
                server_cpu_s=round(server_cpu[m.name], 6),
                locust_cpu_s=round(spent.processes[f"locust:{m.name}"], 4),
                rps=round(requests / elapsed, 2),
                share=round(server_cpu[m.name] / total_cpu, 4),
                histogram=sub["histogram"] if sub else None,
            )
        busy = sum(server_cpu.values()) / elapsed
        dropped: str | None = None
        if max(steal, default=0.0) > steal_limit:
            dropped = f"steal {max(steal):.1f} % > {steal_limit:g} %"
        elif busy < saturated:
            dropped = (
                f"unsaturated: the servers used {100 * busy:.0f} % of their core "
                f"(< {100 * saturated:.0f} %): cost per request at saturation not measured"
            )
        elif any(not v.requests or v.errors for v in figures.values()):
            dropped = "a member completed no request or failed one"
        window = CoWindow(
            start=round(t0, 3), elapsed_s=round(elapsed, 4),
            steal_percent=[round(x, 2) for x in steal],
            busy_percent=[round(100 * x / elapsed, 1) for x in spent.cores],
            members=figures, dropped=dropped, servers_busy_percent=round(100 * busy, 1),
        )  # fmt: skip
        out.append(window)
    return out


def _tally_window(
    rows: list[tally.Row], i: int
) -> tuple[int, float, float, float, float, int, float, float] | None:
    """(requests, CPU s, calibration CPU s, user s, system s, context switches, GC CPU s,
    full-GC CPU s) of window *i* from a server's dumps at its edges."""
    if i + 1 >= len(rows):
        return None
    a, b = rows[i], rows[i + 1]
    return (
        b.requests - a.requests, (b.cpu_ns - a.cpu_ns) / 1e9,
        (b.calibration_ns - a.calibration_ns) / 1e9, (b.user_ns - a.user_ns) / 1e9,
        (b.system_ns - a.system_ns) / 1e9, b.switches - a.switches,
        (b.gc_ns - a.gc_ns) / 1e9, (b.full_gc_ns - a.full_gc_ns) / 1e9,
    )  # fmt: skip


def _sleep_until(timestamp: float) -> None:
    delay = timestamp - time.time()
    if delay > 0:
        time.sleep(delay)
