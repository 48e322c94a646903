"""The load run's figures: throughput, latency spectrum, server CPU, overhead, axes.

Invalid cells are never drawn as if valid: they appear as grey crosses, apart from the
lines and bars, which use valid trials only. Shared parts (colours, footer, saving) come
from bench/common/plots.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from bench.common import plots, stats
from bench.common.result_files import LoadCell, RunFile, SeriesInfo
from bench.common.results import censored_percentiles, percentile

SPECTRUM = ["p50", "p90", "p99", "p99.9"]
"""Percentiles every cell records (``latency_us``); the spectrum draws exactly these."""
INVALID = {"color": "#555555", "marker": "x", "linestyle": "none", "markersize": 8}

Cell = LoadCell


def interval(values: list[float]) -> tuple[float, float, float]:
    """(median, low, high) of trials: the statistics module's interval of a median."""
    return stats.median_ci(values)


def _variants(doc: RunFile) -> list[str]:
    return doc.series_names()


def _cells(doc: RunFile, **match: Any) -> list[Cell]:
    return [c for c in doc.cells if all(getattr(c, k) == v for k, v in match.items())]


def _ok(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if c.ok]


def _kind(doc: RunFile, series: str) -> str | None:
    info = doc.variants.get(series)
    return info.kind if info else None


def _style(series: str, doc: RunFile) -> dict[str, Any]:
    """*series*' line style among the run's series (``plots.line_style``)."""
    return plots.line_style(series, doc.series_names())


Ranked = list[tuple[str, tuple[float, float, float] | None, list[float]]]
"""Rows of a ranked dot plot: series, (median, low, high) of valid trials, invalid values."""


def _ranked_panel(ax: Any, ranked: Ranked, doc: RunFile, *, invalid_label: bool) -> bool:
    """Draw *ranked* top to bottom as dots with CI whiskers; True if it drew invalid trials."""
    drew_invalid = False
    for y, (series, mid, bad) in enumerate(reversed(ranked)):
        if mid is not None:
            m, lo, hi = mid
            kw = _style(series, doc)
            ax.errorbar(
                [m], [y], xerr=[[m - lo], [hi - m]], capsize=3, markersize=7,
                linestyle="none", color=kw["color"], marker=kw["marker"],
                markerfacecolor=kw.get("markerfacecolor", kw["color"]),
            )  # fmt: skip
            ax.annotate(
                f"{m:,.0f}", (hi, y), xytext=(4, 0), textcoords="offset points",
                va="center", fontsize=7, color="#333333",
            )  # fmt: skip
        if bad:
            label = (
                "invalid trial (not in the median)" if invalid_label and not drew_invalid else None
            )
            ax.plot(bad, [y] * len(bad), label=label, **INVALID)
            drew_invalid = True
    names = [r[0] for r in reversed(ranked)]
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for tick, series in zip(ax.get_yticklabels(), names, strict=True):
        tick.set_color(plots.style(series)[0])
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlim(left=0)
    ax.grid(True, axis="x", alpha=0.3)
    return drew_invalid


def _ranked_rows(
    doc: RunFile, value: Callable[[Cell], float | None], *, descending: bool, **match: Any
) -> Ranked:
    rows: Ranked = []
    for series in _variants(doc):
        group = _cells(doc, variant=series, **match)
        valid = [v for c in _ok(group) if (v := value(c)) is not None]
        bad = [v for c in group if not c.ok and (v := value(c))]
        if valid or bad:
            rows.append((series, interval(valid) if valid else None, bad))
    missing = -math.inf if descending else math.inf
    rows.sort(key=lambda r: r[1][0] if r[1] else missing, reverse=descending)
    return rows


def _value_room(axes: Iterable[Any]) -> None:
    for ax in axes:
        ax.set_xlim(right=ax.get_xlim()[1] * 1.1)  # room for the value labels


def throughput(doc: RunFile, scenario: str, path: Path) -> Path:
    """req/s per series, ranked, one panel per concurrency: dot = median, whiskers = CI."""
    users = sorted({c.users for c in _cells(doc, scenario=scenario)})
    fig, axes = plt.subplots(
        1, len(users), figsize=plots.SIZE, dpi=plots.DPI, sharex=True, squeeze=False
    )
    fig.suptitle(
        f"Throughput — {scenario} scenario: req/s per series, fastest on top "
        f"(dot: median of valid trials, whiskers: 95 % CI)",
        fontsize=11,
    )
    plots.sign(fig, doc)
    drew_invalid = False
    for ax, n in zip(axes[0], users, strict=True):
        rows = _ranked_rows(doc, lambda c: c.rps, descending=True,
                            scenario=scenario, users=n)  # fmt: skip
        drew_invalid |= _ranked_panel(ax, rows, doc, invalid_label=not drew_invalid)
        ax.set_title(f"{n} concurrent users", fontsize=10)
        ax.set_xlabel("requests per second")
    _value_room(axes[0][-1:])
    if drew_invalid:
        fig.legend(loc="lower right", fontsize=8)
    return plots.save(fig, path)


def latency_spectrum(doc: RunFile, scenario: str, users: int, path: Path) -> Path:
    """Latency percentiles p50…p99.9 per series: median over valid trials of each trial's
    percentile (``results.percentile``); censored values drawn hollow with an arrow up."""
    fig, ax = plots.figure(f"Latency spectrum — {scenario} scenario, {users} users", doc)
    xs = {k: -math.log10(1 - float(k[1:]) / 100) for k in SPECTRUM}
    recorded = any("tail_resolved" in c.model_fields_set for c in doc.cells)
    any_censored = False
    highest = 0.0
    for series in _variants(doc):
        group = _cells(doc, scenario=scenario, variant=series, users=users)
        valid = _ok(group)
        if not valid:
            continue
        kw = _style(series, doc)
        censored = censored_percentiles(group)
        keys = [k for k in SPECTRUM if all(k in c.latency_us for c in valid)]
        ys = {k: percentile(group, k)[0] / 1000 for k in keys}
        highest = max(highest, *ys.values())
        ax.plot(
            [xs[k] for k in keys], [ys[k] for k in keys], markersize=6,
            label=f"{series} ({len(valid)} trials)", **kw,
        )  # fmt: skip
        for k in keys:
            if k in censored:
                any_censored = True
                ax.plot([xs[k]], [ys[k]], marker=kw["marker"], markersize=9,
                        markerfacecolor="white", color=kw["color"], linestyle="none")  # fmt: skip
                ax.annotate(
                    "", xy=(xs[k], ys[k] * 1.8), xytext=(xs[k], ys[k] * 1.08),
                    arrowprops={"arrowstyle": "->", "color": kw["color"], "lw": 1.2},
                )  # fmt: skip
    ax.set_xticks(list(xs.values()), list(xs))
    ax.set_xlim(0, max(xs.values()) + 0.3)
    ax.set_yscale("log")
    ax.set_xlabel("percentile (each step: one more nine) — median over valid trials")
    ax.set_ylabel("latency, ms (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    if any_censored:
        ax.plot([], [], marker="o", markerfacecolor="white", color="#333333", linestyle="none",
                label="≥ censored: at least this")  # fmt: skip
        ax.set_ylim(top=highest * 2.5)  # room for the arrows
        ax.text(
            0.01, 0.98, "hollow ↑: a lower bound (requests still waiting when the window closed)",
            transform=ax.transAxes, fontsize=7, va="top", color="#555555",
        )  # fmt: skip
    elif not recorded:
        ax.text(
            0.01, 0.98, "this run did not record censoring: tails count completed requests only",
            transform=ax.transAxes, fontsize=7, va="top", color="#555555",
        )  # fmt: skip
    plots.legend_outside(ax, "series (trials)")
    return plots.save(fig, path)


def _grouped_dots(
    ax: Any,
    groups: list[str],
    series: dict[str, list[tuple[float, float, float] | None]],
    doc: RunFile,
) -> None:
    """One column of dots per group, one dot per series (its colour and marker), CI whiskers."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        kw = _style(name, doc)
        for x, v in zip(xs, values, strict=True):
            if v is None:
                continue
            ax.errorbar(
                [x], [v[0]], yerr=[[v[0] - v[1]], [v[2] - v[0]]], capsize=2, markersize=6,
                linestyle="none", color=kw["color"], marker=kw["marker"],
                markerfacecolor=kw.get("markerfacecolor", kw["color"]),
            )  # fmt: skip
        ax.plot([], [], linestyle="none", label=name,
                **{k: v for k, v in kw.items() if k != "linestyle"})  # fmt: skip
    ax.set_xticks(range(len(groups)), groups)
    for g in range(1, len(groups)):
        ax.axvline(g - 0.5, color="#dddddd", linewidth=0.8)


def server_cpu(doc: RunFile, users: int, path: Path) -> Path:
    """Server CPU µs per request, ranked per scenario (median, 95 % CI whiskers)."""
    scenarios = [s for s in doc.settings.scenarios if _cells(doc, scenario=s, users=users)]
    cols = min(len(scenarios), 2)
    lines = math.ceil(len(scenarios) / cols)
    fig, grid = plt.subplots(
        lines, cols, figsize=(plots.SIZE[0], 1.0 + 3.6 * lines), dpi=plots.DPI, squeeze=False
    )
    axes = [list(grid.flat)]
    for spare in axes[0][len(scenarios) :]:
        spare.axis("off")
    fig.suptitle(
        f"Server CPU per request — {users} users, cheapest on top "
        f"(dot: median of valid trials, whiskers: 95 % CI)",
        fontsize=11,
    )
    plots.sign(fig, doc)
    for ax, scenario in zip(axes[0], scenarios, strict=False):
        rows = _ranked_rows(
            doc, lambda c: c.server_us, descending=False,
            scenario=scenario, users=users,
        )  # fmt: skip
        _ranked_panel(ax, rows, doc, invalid_label=False)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("server CPU µs / request")
    _value_room(axes[0][: len(scenarios)])
    return plots.save(fig, path)


def _raw_twin(variants: dict[str, SeriesInfo], series: str) -> str:
    """The ``raw`` series run with the same axis values as *series* (``raw+pool32`` …);
    raw runs on asyncpg only, so a psycopg series' twin is raw's asyncpg series."""
    info = variants.get(series)
    variant = (info.variant if info and info.recorded("variant") else None) or series
    twin = "raw" + series.removeprefix(variant)
    if twin not in variants and twin.endswith("+psycopg"):
        return twin.removesuffix("+psycopg") + "+asyncpg"
    return twin


def overhead(doc: RunFile, users: int, path: Path) -> Path:
    """Server CPU per request relative to raw and to the cheapest strategy (1.0 = equal)."""
    fig, axes = plt.subplots(1, 2, figsize=plots.SIZE, dpi=plots.DPI, sharey=False)
    fig.suptitle(f"Overhead: server CPU per request relative to a reference — {users} users")
    plots.sign(fig, doc)
    scenarios = sorted({c.scenario for c in _cells(doc, users=users)})
    medians: dict[tuple[str, str], float] = {}
    for variant in _variants(doc):
        for scenario in scenarios:
            valid = _ok(_cells(doc, scenario=scenario, variant=variant, users=users))
            cpu = [v for c in valid if (v := c.server_us) is not None]
            if cpu:
                medians[variant, scenario] = interval(cpu)[0]
    strategies = [v for v in _variants(doc) if _kind(doc, v) == "strategy"]
    for ax, reference in zip(axes, ("raw", "cheapest strategy"), strict=True):
        series: dict[str, list[tuple[float, float, float] | None]] = {}
        for variant in _variants(doc):
            values: list[tuple[float, float, float] | None] = []
            for scenario in scenarios:
                if reference == "raw":
                    base = medians.get((_raw_twin(doc.variants, variant), scenario))
                else:
                    candidates = [
                        medians[s, scenario] for s in strategies if (s, scenario) in medians
                    ]
                    base = min(candidates) if candidates else None
                value = medians.get((variant, scenario))
                values.append((value / base,) * 3 if value and base else None)
            series[variant] = values
        _grouped_dots(ax, scenarios, series, doc)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"relative to {reference}", fontsize=10)
        ax.set_xlabel("scenario")
        ax.set_ylabel("× server CPU µs/request")
        ax.grid(True, axis="y", alpha=0.3)
    plots.legend_outside(axes[1], "series")
    return plots.save(fig, path)


AXES = {"pool_size": "pool size per server process", "workers": "server worker processes",
        "server": "ASGI server", "pool_queue": "pool queue",
        "driver": "database driver"}  # fmt: skip


def varied_axes(doc: RunFile) -> list[str]:
    """The axes (keys of ``AXES``) that take more than one value among the run's series."""
    infos = [doc.variants.get(name, SeriesInfo()) for name in _variants(doc)]
    return [axis for axis in AXES if len({str(getattr(i, axis)) for i in infos}) > 1]


def axis(doc: RunFile, name: str, users: int, path: Path) -> Path:
    """req/s and p99 against one varied axis, one line per variant, one column per scenario."""
    scenarios = [s for s in doc.settings.scenarios if _cells(doc, scenario=s, users=users)]
    fig, axes = plt.subplots(2, len(scenarios), figsize=plots.SIZE, dpi=plots.DPI, squeeze=False)
    fig.suptitle(f"What {AXES[name]} changes — {users} users")
    plots.sign(fig, doc)
    series = {s: doc.variants[s] for s in _variants(doc)}
    values = sorted(
        {getattr(info, name) for info in series.values()}, key=lambda v: (str(type(v)), v)
    )
    for col, scenario in enumerate(scenarios):
        rps_ax, p99_ax = axes[0][col], axes[1][col]
        for variant in dict.fromkeys(str(info.variant) for info in series.values()):
            others = {k: v for k, v in series.items() if str(v.variant) == variant}
            xs, rps, rps_err, p99 = [], [], [], []
            for i, value in enumerate(values):
                names = [k for k, v in others.items() if getattr(v, name) == value]
                valid = [
                    c
                    for n in names
                    for c in _ok(_cells(doc, scenario=scenario, variant=n, users=users))
                ]
                if not valid:
                    continue
                m, lo, hi = interval([c.measured_rps for c in valid])
                xs.append(i)
                rps.append(m)
                rps_err.append((m - lo, hi - m))
                p99.append(percentile(valid, "p99")[0] / 1000)
            if xs:
                errors = [[e[0] for e in rps_err], [e[1] for e in rps_err]]
                kw = plots.line_style(variant)
                rps_ax.errorbar(xs, rps, yerr=errors, capsize=3, label=variant, **kw)
                p99_ax.plot(xs, p99, label=variant, **kw)
        for ax in (rps_ax, p99_ax):
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.grid(True, alpha=0.3)
        rps_ax.set_title(scenario, fontsize=10)
        rps_ax.set_ylim(bottom=0)
        p99_ax.set_yscale("log")
        p99_ax.set_xlabel(AXES[name])
        if col == 0:
            rps_ax.set_ylabel("req/s (median, 95 % CI)")
            p99_ax.set_ylabel("p99 latency, ms (log)")
    plots.legend_outside(axes[0][-1], "variant")
    return plots.save(fig, path)
