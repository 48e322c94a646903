"""The pitfall matrix in the report: blocks for ``bench.report`` and the figures behind them.

``section(folder)`` returns the blocks (matrix table, details) and the plots it wrote
(matrix as a coloured table, restart recovery, soak RSS) when the folder has a
``pitfalls.json``; ``build_alone(folder)`` writes a whole report for a folder that has
no load run. ``brief(cell)`` is a cell's key numbers, shared with the terminal table.

A row of the matrix is a scenario under one pool pre-ping setting: a scenario run with
pre-ping off and on (the PostgreSQL restart) has two rows, ``pg_restart (pre-ping off)``
and ``pg_restart (pre-ping on)``, so what the pool setting fixes for every strategy is
told apart from what one strategy does. A repeated cell shows its worst outcome with its
count (``broken 2 of 5``; ``degraded (n=1)`` when it ran once).
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from bench.common import plots
from bench.common.blocks import register_section
from bench.common.result_files import PitfallCell, PitfallFile, PitfallRunRecord, PitfallSettings
from bench.pitfalls.probe import BROKEN, DEGRADED, ERROR, OK, SKIPPED, plural
from bench.pitfalls.repeats import tally_text
from bench.pitfalls.scenarios import BRIEF

Row = tuple[str, bool | None]
"""A matrix row: (scenario, pre-ping setting; None in files from before the setting)."""

OUTCOME_STYLE: dict[str, tuple[str, str]] = {
    OK: ("green", "#b8e0b0"),
    DEGRADED: ("yellow", "#fdd49e"),
    BROKEN: ("red", "#f4a582"),
    ERROR: ("magenta", "#d9d9d9"),
    SKIPPED: ("dim", "#f2f2f2"),
}
"""Outcome → (rich style in the terminal, cell colour in the PNG)."""

MEANING = (
    "ok: behaved as a user expects. degraded: right answers, but a connection or transaction "
    "held longer than the work, or errors a careful app avoids. broken: a wrong answer (a 2xx "
    "for a lost write, a lost background write), a connection or session leaked, or a server "
    "that stopped serving. error: the scenario itself failed (message in the details). "
    "skipped: not applicable (reason in the details)."
)


def brief(cell: PitfallCell) -> str:
    """A cell's key numbers in a few words (the summary when there are no numbers)."""
    numbers = cell.numbers
    line = BRIEF.get(cell.scenario)
    if numbers and line is not None:
        try:
            text = line(numbers)
        except (KeyError, TypeError, ValueError):
            pass
        else:
            if numbers.get("leaked_connections"):
                return f"{text} · {numbers['leaked_connections']} conn leaked"
            if numbers.get("registry_after"):
                return f"{text} · {plural(numbers['registry_after'], 'session')} left in registry"
            return text
    summary = cell.summary or ""
    return summary if len(summary) <= 60 else summary[:57] + "…"


def tally(cell: PitfallCell) -> str:
    """A repeated cell's outcomes with their counts (bench.pitfalls.repeats.tally_text)."""
    runs = len(cell.runs) if cell.runs is not None else None
    return tally_text(cell.outcome, cell.tally or {}, runs)


def outcome_text(cell: PitfallCell) -> str:
    """The outcome, with its count when the cell was repeated (``broken 2 of 5, ok 3 of 5``)."""
    return tally(cell) or cell.outcome


def rows(doc: PitfallFile) -> list[Row]:
    """The matrix's rows in run order: each scenario once per pre-ping setting it ran under."""
    out: list[Row] = []
    for scenario in doc.settings.scenarios:
        found = {c.pool_pre_ping for c in doc.cells if c.scenario == scenario}
        out += [(scenario, p) for p in (None, False, True) if p in found]
    return out


def swept(doc: PitfallFile, scenario: str) -> bool:
    """Whether *scenario* ran under both pre-ping settings."""
    return {False, True} <= {c.pool_pre_ping for c in doc.cells if c.scenario == scenario}


def row_label(doc: PitfallFile, row: Row) -> str:
    """``pg_restart (pre-ping off)`` for a scenario run under both settings, else its name."""
    scenario, pre_ping = row
    return (
        f"{scenario} (pre-ping {'on' if pre_ping else 'off'})" if swept(doc, scenario) else scenario
    )


def cell_index(doc: PitfallFile) -> dict[tuple[str, bool | None, str], PitfallCell]:
    """The cells by (scenario, pre-ping setting, variant)."""
    return {(c.scenario, c.pool_pre_ping, c.variant): c for c in doc.cells}


def pre_ping_split(doc: PitfallFile, scenario: str) -> dict[str, list[str]]:
    """For a scenario run with pre-ping off and on, which variants' failures are whose.

    ``pool setting``: failed with pre-ping off, ok with it on (the setting fixes it);
    ``strategy``: failed with pre-ping on too (the strategy's own doing); ``ok``: ok under
    both. Variants skipped or in error under either setting are left out.
    """
    cells = cell_index(doc)
    split: dict[str, list[str]] = {"pool setting": [], "strategy": [], "ok": []}
    for name in doc.settings.variants:
        off, on = cells.get((scenario, False, name)), cells.get((scenario, True, name))
        if off is None or on is None or {off.outcome, on.outcome} & {ERROR, SKIPPED}:
            continue
        if on.outcome != OK:
            split["strategy"].append(name)
        else:
            split["pool setting" if off.outcome != OK else "ok"].append(name)
    return split


POOL_SYMPTOM = {
    "pg_restart": (
        "errors_after_idle_restart",
        "requests failing on stale pooled connections after a restart during idle time",
    ),
}
"""Per scenario run with pre-ping off and on: the number that shows what pre-ping is for
(non-zero: the symptom was seen), and what it means."""


def _symptom(doc: PitfallFile, scenario: str) -> str | None:
    """``<symptom>: every strategy with pre-ping off (10 of 10 runs), none with it on: a pool
    setting`` — which strategies showed *scenario*'s pool symptom in how many runs, per setting."""
    if scenario not in POOL_SYMPTOM:
        return None
    key, meaning = POOL_SYMPTOM[scenario]
    said = []
    for pre_ping in (False, True):
        cells = [
            c
            for c in doc.cells
            if (c.scenario, c.pool_pre_ping) == (scenario, pre_ping)
            and c.outcome not in (ERROR, SKIPPED)
        ]
        runs: list[tuple[str, PitfallRunRecord | PitfallCell]] = []
        for c in cells:
            runs += [(c.variant, r) for r in c.runs] if c.runs else [(c.variant, c)]
        seen = [(v, r) for v, r in runs if r.numbers.get(key)]
        names = list(dict.fromkeys(v for v, _ in seen))
        if not seen:
            who = "none"
        elif len(names) == len(cells):
            who = "every strategy"
        else:
            who = ", ".join(names)
        counted = f" ({len(seen)} of {len(runs)} runs)" if seen else ""
        said.append(f"{who} with pre-ping {'on' if pre_ping else 'off'}{counted}")
    verdict = ""
    if said[0].startswith("every strategy") and said[1].startswith("none"):
        verdict = ": a pool setting, not a strategy's doing"
    return f"{meaning}: {', '.join(said)}{verdict}"


def findings(doc: PitfallFile) -> list[str]:
    """One line per matrix row: which strategies came out ok, degraded, broken (generated);
    for a scenario run with pre-ping off and on, one more: what the setting fixed."""
    lines = []
    for row in rows(doc):
        scenario, pre_ping = row
        cells = [c for c in doc.cells if (c.scenario, c.pool_pre_ping) == row]
        parts = []
        for outcome in (BROKEN, DEGRADED, ERROR, OK, SKIPPED):
            names = [
                c.variant + (f" ({tally(c)})" if len(c.runs or []) > 1 else "")
                for c in cells
                if c.outcome == outcome
            ]
            if names:
                parts.append(f"{outcome}: {', '.join(names)}")
        label = doc.scenarios.get(scenario, scenario).split(":")[0]
        if swept(doc, scenario):
            label += f" (pre-ping {'on' if pre_ping else 'off'})"
        lines.append(f"{label} — " + "; ".join(parts) + ".")
        if pre_ping and swept(doc, scenario):
            said = [symptom] if (symptom := _symptom(doc, scenario)) else []
            split = pre_ping_split(doc, scenario)
            if split["pool setting"] and not said:  # the symptom, when known, says it better
                every = not split["strategy"] and not split["ok"]
                who = "every strategy" if every else ", ".join(split["pool setting"])
                said.append(
                    f"pre-ping fixes what {who} showed with it off: a pool setting, "
                    "not the strategy's doing"
                )
            if split["strategy"]:
                by_key = cell_index(doc)
                still = [
                    f"{n} [{outcome_text(by_key[scenario, True, n])}]" for n in split["strategy"]
                ]
                said.append(f"failing with pre-ping on too: {', '.join(still)}")
            if said:
                lines.append(f"{label.rsplit(' (', 1)[0]}, off vs on — " + "; ".join(said) + ".")
    return lines


def matrix_plot(doc: PitfallFile, path: Path) -> Path:
    """The matrix as a table figure: one row a scenario, one column a variant, coloured."""
    names = list(doc.settings.variants)
    shown_rows = rows(doc)
    cells = cell_index(doc)
    width = max(10.0, 1.2 + 2.6 * len(names))
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.7 * len(shown_rows)), dpi=plots.DPI)
    ax.axis("off")
    ax.set_title(
        f"Pitfall matrix — outcome and key numbers per strategy "
        f"(pool {doc.settings.pool_size}, timeout {doc.settings.pool_timeout:g} s)",
        fontsize=12,
    )
    text, colours = [], []
    for scenario, pre_ping in shown_rows:
        row, colour = [], []
        for name in names:
            cell = cells.get((scenario, pre_ping, name))
            outcome = cell.outcome if cell else SKIPPED
            row.append(f"{outcome_text(cell)}\n{textwrap.fill(brief(cell), 34)}" if cell else "–")
            colour.append(OUTCOME_STYLE[outcome][1])
        text.append(row)
        colours.append(colour)
    shown = ax.table(
        cellText=text,
        cellColours=colours,
        rowLabels=[row_label(doc, row) for row in shown_rows],
        colLabels=names,
        loc="center",
        cellLoc="center",
    )
    shown.auto_set_font_size(False)
    shown.set_fontsize(7)
    shown.scale(1, 3.4)
    ax.legend(
        handles=[Patch(color=c, label=o) for o, (_, c) in OUTCOME_STYLE.items()],
        loc="lower center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=len(OUTCOME_STYLE),
        fontsize=8,
        title="outcome (numbers: counts, seconds, MB)",
        title_fontsize=8,
    )
    plots.sign(fig, doc)
    return plots.save(fig, path)


def restart_plot(doc: PitfallFile, path: Path) -> Path | None:
    """Successful and failed requests per second around the PostgreSQL restart, per variant:
    one column per pre-ping setting (of a repeated cell: its worst run)."""
    runs = [c for c in doc.cells if c.scenario == "pg_restart" and c.series is not None]
    if not runs:
        return None
    settings = [p for p in (None, False, True) if any(c.pool_pre_ping == p for c in runs)]
    fig, axes = plt.subplots(
        2, len(settings), figsize=plots.SIZE, dpi=plots.DPI, sharex=True, sharey="row",
        squeeze=False,
    )  # fmt: skip
    fig.suptitle(
        "PostgreSQL restart under load (4 clients): requests per second "
        "(grey: PostgreSQL stopping → ready)"
    )
    plots.sign(fig, doc)
    for column, setting in enumerate(settings):
        top, bottom = axes[0][column], axes[1][column]
        shown = [c for c in runs if c.pool_pre_ping == setting]
        for cell in shown:
            timeline = (cell.series or {})["restart"]
            step = timeline["bucket_s"]
            xs = [b[0] for b in timeline["buckets"]]
            style = {"label": cell.variant, **plots.line_style(cell.variant),
                     "markersize": 3}  # fmt: skip
            top.plot(xs, [b[1] / step for b in timeline["buckets"]], **style)
            bottom.plot(xs, [b[2] / step for b in timeline["buckets"]], **style)
        first = (shown[0].series or {})["restart"]
        for ax in (top, bottom):
            ax.axvspan(first["down"], first["up"], color="#999999", alpha=0.25)
            ax.grid(True, alpha=0.3)
        if setting is not None:
            top.set_title(f"pool pre-ping {'on' if setting else 'off'}", fontsize=10)
    axes[0][0].set_ylabel("succeeded, req/s")
    axes[1][0].set_ylabel("failed, req/s")
    for ax in axes[1]:
        ax.set_xlabel("seconds since the load started")
    plots.legend_outside(axes[0][-1], "variant")
    return plots.save(fig, path)


def soak_plot(doc: PitfallFile, path: Path) -> Path | None:
    """Server RSS and scoped registry size over the soak, per variant."""
    runs = [c for c in doc.cells if c.scenario == "soak" and c.series is not None]
    if not runs:
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=plots.SIZE, dpi=plots.DPI, sharex=True)
    fig.suptitle("Soak: server memory and scoped-session registry under mixed load (8 clients)")
    plots.sign(fig, doc)
    for cell in runs:
        trace = (cell.series or {})["soak"]
        xs = [row[0] for row in trace]
        style = {"label": cell.variant, **plots.line_style(cell.variant), "markersize": 4,
                 "markevery": max(1, len(trace) // 12)}  # fmt: skip
        top.plot(xs, [row[1] for row in trace], **style)
        if any(row[2] is not None for row in trace):
            bottom.plot(xs, [row[2] for row in trace], **style)
    top.set_ylabel("server RSS, MB")
    bottom.set_ylabel("sessions in registry")
    bottom.set_xlabel("seconds since the soak started")
    plots.legend_outside(top, "variant")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    return plots.save(fig, path)


@register_section("pitfalls")
def section(folder: Path) -> tuple[list[Any], list[Path]]:
    """Report blocks and written plots for *folder*'s pitfalls.json (nothing if it has none)."""
    from bench.common.blocks import PLOTS, bullets, h2, img, p, table
    from bench.pitfalls.runner import PITFALLS_FILE, PitfallRun

    if not (folder / PITFALLS_FILE).exists():
        return [], []
    doc = PitfallRun.load(folder).matrix
    (folder / PLOTS).mkdir(exist_ok=True)
    s = doc.settings
    names = list(s.variants)
    written = [matrix_plot(doc, folder / PLOTS / "pitfalls-matrix.png")]
    cells = cell_index(doc)
    shown = []
    for scenario, pre_ping in rows(doc):
        row = [f"{row_label(doc, (scenario, pre_ping))}: {doc.scenarios.get(scenario, '')}"]
        for name in names:
            cell = cells.get((scenario, pre_ping, name))
            row.append(f"{outcome_text(cell)} · {brief(cell)}" if cell else "–")
        shown.append(row)
    blocks = [
        h2("Pitfall matrix"),
        p(
            f"Each scenario probes each strategy's server from outside (HTTP, the lab's pool "
            f"counters, pg_stat_activity, the table). {s.mode} mode, pool size "
            f"{s.pool_size} with a {s.pool_timeout:g} s pool timeout, soak "
            f"{s.soak:g} s; {_pre_ping_text(s)}; status {doc.status}, started "
            f"{doc.started}. {MEANING}"
        ),
        img(f"{PLOTS}/{written[0].name}", "pitfall matrix, coloured by outcome"),
        table(["scenario", *names], shown),
        p(
            "How the lab endpoints use the session (GET /lab/…, mounted by every strategy "
            "and library "
            "served with --lab, never part of the contract, the schema or the throughput "
            "runs): the scoped family uses "
            "its global session everywhere (also in gathered tasks, background tasks and "
            "streaming generators); the depends family uses the injected session and hands "
            "it to background tasks and generators; context opens a session wherever it "
            "needs one (one per gathered task, one per streamed page, its own in a "
            "background task). The libraries use their own session as their docs show: "
            "fastapi_async_sqlalchemy its db.session global as the scoped family does "
            "(fan-out in db(multi_sessions=True), as its README shows), "
            "advanced_alchemy its provide_session() dependency on a commit_mode='autocommit' "
            "config (the middleware commits after the response) and fastapi_sqla its "
            "AsyncSession dependency (the middleware commits when the response starts); "
            "handlers of those two never commit."
        ),
        p("In short:"),
        bullets(findings(doc)),
    ]
    for plot, alt in (
        (restart_plot(doc, folder / PLOTS / "pitfalls-restart.png"), "PostgreSQL restart"),
        (soak_plot(doc, folder / PLOTS / "pitfalls-soak.png"), "soak RSS and registry"),
    ):
        if plot is not None:
            written.append(plot)
            blocks.append(img(f"{PLOTS}/{plot.name}", alt))
    details = [
        [
            row_label(doc, (c.scenario, c.pool_pre_ping)),
            c.variant,
            outcome_text(c),
            (c.summary or "") + "".join(f" [{note}]" for note in c.notes),
        ]
        for c in doc.cells
    ]
    blocks += [h2("Pitfall details"), table(["scenario", "variant", "outcome", "why"], details)]
    restarts = [
        f"{name}: restarted {info['restarts']}× ("
        + "; ".join(
            reason + (f" ×{n}" if n > 1 else "")
            for reason, n in Counter(info.get("restart_reasons", [])).items()
        )
        + ")"
        for name, info in doc.variants.items()
        if info.get("restarts")
    ]
    if restarts:
        blocks += [p("Servers restarted between scenarios (so damage does not carry over):")]
        blocks.append(bullets(restarts))
    return blocks, written


def _pre_ping_text(settings: PitfallSettings) -> str:
    """The run's pre-ping setting and repeats, in words."""
    setting = settings.pre_ping
    text = {
        "off": "pool pre-ping off",
        "on": "pool pre-ping on",
        "both": "pool pre-ping off, and the PostgreSQL restart also with it on",
    }[setting]
    repeats = settings.repeats
    return text + (
        f"; each restart cell run {repeats}× (worst outcome with its count)"
        if repeats > 1
        else "; each restart cell run once (n=1)"
    )


def build_alone(folder: Path, lead: Sequence[Any] = ()) -> list[Path]:
    """report.md and index.html for a folder with a pitfalls.json and no load run; *lead*:
    blocks to open the report with (the scorecard, from ``sessionbench report``)."""
    from bench.common.blocks import bullets, h1, h2, p, write_report
    from bench.pitfalls.runner import PitfallRun

    doc = PitfallRun.load(folder).matrix
    env = doc.environment
    title = f"sessionbench pitfalls — {doc.run_id}"
    blocks, written = section(folder)
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    blocks = [
        h1(title),
        p(f"{env.get('cpu_model')} × {env.get('cpu_count')}, run {doc.started}."),
        *lead,
        *blocks,
        h2("Method"),
        bullets(
            [
                f"Command: {' '.join(doc.command)}; status {doc.status}; finished {doc.finished}.",
                f"PostgreSQL {env.get('postgres', {}).get('version')} "
                f"({'embedded' if env.get('embedded_postgres') else 'external'}), "
                f"URL {env.get('database_url')}.",
                f"Python {env.get('python')}; {env.get('platform')}; packages: {packages}; "
                f"commit {env.get('git_commit')}"
                + (" (with local changes)." if env.get("git_dirty") else "."),
            ]
        ),
    ]
    return [*written, *write_report(folder, blocks, title)]
