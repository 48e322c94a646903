"""The report's figures (matplotlib, Agg, PNG), each readable without the text around it.

Every figure has a title, axis labels with units, a legend, and the environment in a
footer. Invalid cells are never drawn as if valid: they appear as red crosses, apart
from the lines and bars, which use valid trials only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bench import histograms
from bench.results import series_names
from bench.stats import median_ci

SIZE = (10.0, 5.6)  # inches
DPI = 100  # → 1000 × 560 px
SPECTRUM = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99]
INVALID = {"color": "#d62728", "marker": "x", "linestyle": "none", "markersize": 9}

Cell = dict[str, Any]


def footer(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    pg = env.get("postgres", {}).get("version", "?")
    placement = env.get("placement", {})
    where = (
        f"server on cores {placement.get('server_cores')}, locust + PostgreSQL on "
        f"{placement.get('locust_cores')}"
        if placement
        else ""
    )
    commit = (env.get("git_commit") or "?")[:10]
    return (
        f"{env.get('cpu_model')} × {env.get('cpu_count')} · Python {env.get('python')} · "
        f"PostgreSQL {pg} · {where} · run {doc['run_id']} · commit {commit}"
    )


def sign(fig: Figure, doc: dict[str, Any]) -> None:
    """Put the environment footer on *fig*."""
    fig.text(0.01, 0.01, footer(doc), fontsize=7, color="#555555")


def _figure(title: str, doc: dict[str, Any]) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    ax.set_title(title, fontsize=12)
    sign(fig, doc)
    return fig, ax


def save(fig: Figure, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _variants(doc: dict[str, Any]) -> list[str]:
    return series_names(doc)


def _cells(doc: dict[str, Any], **match: Any) -> list[Cell]:
    return [c for c in doc["cells"] if all(c.get(k) == v for k, v in match.items())]


def _ok(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if c["status"] == "ok"]


def throughput(doc: dict[str, Any], scenario: str, path: Path) -> Path:
    """req/s against concurrency, one line per variant with a 95 % bootstrap CI band."""
    fig, ax = _figure(f"Throughput vs concurrency — {scenario} scenario", doc)
    users = sorted({c["users"] for c in _cells(doc, scenario=scenario)})
    marked_invalid = False
    for variant in _variants(doc):
        xs, mid, low, high = [], [], [], []
        for n in users:
            group = _cells(doc, scenario=scenario, variant=variant, users=n)
            valid = [c["rps"] for c in _ok(group)]
            if valid:
                m, lo, hi = median_ci(valid)
                xs.append(n)
                mid.append(m)
                low.append(lo)
                high.append(hi)
            bad = [c["rps"] for c in group if c["status"] != "ok" and c.get("rps")]
            if bad:
                label = None if marked_invalid else "invalid trial (not in the lines)"
                ax.plot([n] * len(bad), bad, label=label, **INVALID)
                marked_invalid = True
        if xs:
            errors = [[m - lo for m, lo in zip(mid, low, strict=True)],
                      [hi - m for m, hi in zip(mid, high, strict=True)]]  # fmt: skip
            bars = ax.errorbar(xs, mid, yerr=errors, marker="o", capsize=3, label=variant)
            ax.fill_between(xs, low, high, color=bars.lines[0].get_color(), alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(users, [str(u) for u in users])
    ax.set_xlabel("concurrent users (log₂ scale)")
    ax.set_ylabel("requests per second (median of valid trials)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(title="variant (bars, band: 95 % CI)", fontsize=8)
    return save(fig, path)


def latency_spectrum(doc: dict[str, Any], scenario: str, users: int, path: Path) -> Path:
    """Latency percentiles p50…p99.99 from the merged histograms of valid trials."""
    fig, ax = _figure(f"Latency spectrum — {scenario} scenario, {users} users", doc)
    xs = [-math.log10(1 - p / 100) for p in SPECTRUM]
    for variant in _variants(doc):
        valid = _ok(_cells(doc, scenario=scenario, variant=variant, users=users))
        if not valid:
            continue
        merged = histograms.merge(c["histogram"] for c in valid)
        ys = [merged.get_value_at_percentile(p) / 1000 for p in SPECTRUM]
        ax.plot(xs, ys, marker="o", label=f"{variant} ({len(valid)} trials)")
    ax.set_xticks(xs, [f"p{p:g}" for p in SPECTRUM])
    ax.set_yscale("log")
    ax.set_xlabel("percentile (each step: one more nine)")
    ax.set_ylabel("latency, ms (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="variant", fontsize=8)
    return save(fig, path)


def _grouped_bars(
    ax: Any, groups: list[str], series: dict[str, list[tuple[float, float, float] | None]]
) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        mids = [v[0] if v else math.nan for v in values]
        errs = [
            [v[0] - v[1] if v else 0 for v in values],
            [v[2] - v[0] if v else 0 for v in values],
        ]
        ax.bar(xs, mids, width, yerr=errs, capsize=3, label=name)
    ax.set_xticks(range(len(groups)), groups)


def server_cpu(doc: dict[str, Any], users: int, path: Path) -> Path:
    """Server CPU µs per request per scenario and variant (median, 95 % CI error bars)."""
    fig, ax = _figure(f"Server CPU per request — {users} users", doc)
    scenarios = sorted({c["scenario"] for c in _cells(doc, users=users)})
    series: dict[str, list[tuple[float, float, float] | None]] = {}
    for variant in _variants(doc):
        values = []
        for scenario in scenarios:
            valid = _ok(_cells(doc, scenario=scenario, variant=variant, users=users))
            cpu = [c["cpu_us_per_request"]["server"] for c in valid]
            values.append(median_ci(cpu) if cpu else None)
        series[variant] = values
    _grouped_bars(ax, scenarios, series)
    ax.set_xlabel("scenario")
    ax.set_ylabel("server CPU µs per request (median, 95 % CI)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="variant", fontsize=8)
    return save(fig, path)


def _raw_twin(doc: dict[str, Any], series: str) -> str:
    """The ``raw`` series run with the same axis values as *series* (``raw+pool32`` …)."""
    variant = doc["variants"].get(series, {}).get("variant", series)
    return "raw" + series.removeprefix(variant)


def overhead(doc: dict[str, Any], users: int, path: Path) -> Path:
    """Server CPU per request relative to raw and to the cheapest strategy (1.0 = equal)."""
    fig, axes = plt.subplots(1, 2, figsize=SIZE, dpi=DPI, sharey=False)
    fig.suptitle(f"Overhead: server CPU per request relative to a reference — {users} users")
    sign(fig, doc)
    scenarios = sorted({c["scenario"] for c in _cells(doc, users=users)})
    medians: dict[tuple[str, str], float] = {}
    for variant in _variants(doc):
        for scenario in scenarios:
            valid = _ok(_cells(doc, scenario=scenario, variant=variant, users=users))
            cpu = [c["cpu_us_per_request"]["server"] for c in valid]
            if cpu:
                medians[variant, scenario] = median_ci(cpu)[0]
    strategies = [v for v in _variants(doc) if doc["variants"].get(v, {}).get("kind") == "strategy"]
    for ax, reference in zip(axes, ("raw", "cheapest strategy"), strict=True):
        series: dict[str, list[tuple[float, float, float] | None]] = {}
        for variant in _variants(doc):
            values: list[tuple[float, float, float] | None] = []
            for scenario in scenarios:
                if reference == "raw":
                    base = medians.get((_raw_twin(doc, variant), scenario))
                else:
                    candidates = [
                        medians[s, scenario] for s in strategies if (s, scenario) in medians
                    ]
                    base = min(candidates) if candidates else None
                value = medians.get((variant, scenario))
                values.append((value / base,) * 3 if value and base else None)
            series[variant] = values
        _grouped_bars(ax, scenarios, series)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"relative to {reference}", fontsize=10)
        ax.set_xlabel("scenario")
        ax.set_ylabel("× server CPU µs/request")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(title="variant", fontsize=8)
    return save(fig, path)


AXES = {"pool_size": "pool size per server process", "workers": "server worker processes",
        "server": "ASGI server", "pool_queue": "pool queue"}  # fmt: skip


def varied_axes(doc: dict[str, Any]) -> list[str]:
    """The axes (keys of ``AXES``) that take more than one value among the run's series."""
    infos = [doc["variants"].get(name, {}) for name in _variants(doc)]
    return [axis for axis in AXES if len({str(i.get(axis)) for i in infos}) > 1]


def axis(doc: dict[str, Any], name: str, users: int, path: Path) -> Path:
    """req/s and p99 against one varied axis, one line per variant, one column per scenario."""
    scenarios = [s for s in doc["settings"]["scenarios"] if _cells(doc, scenario=s, users=users)]
    fig, axes = plt.subplots(2, len(scenarios), figsize=SIZE, dpi=DPI, squeeze=False)
    fig.suptitle(f"What {AXES[name]} changes — {users} users")
    sign(fig, doc)
    series = {s: doc["variants"][s] for s in _variants(doc)}
    values = sorted({info[name] for info in series.values()}, key=lambda v: (str(type(v)), v))
    for col, scenario in enumerate(scenarios):
        rps_ax, p99_ax = axes[0][col], axes[1][col]
        for variant in dict.fromkeys(info["variant"] for info in series.values()):
            others = {k: v for k, v in series.items() if v["variant"] == variant}
            xs, rps, rps_err, p99 = [], [], [], []
            for i, value in enumerate(values):
                names = [k for k, v in others.items() if v[name] == value]
                valid = [
                    c
                    for n in names
                    for c in _ok(_cells(doc, scenario=scenario, variant=n, users=users))
                ]
                if not valid:
                    continue
                m, lo, hi = median_ci([c["rps"] for c in valid])
                xs.append(i)
                rps.append(m)
                rps_err.append((m - lo, hi - m))
                merged = histograms.merge(c["histogram"] for c in valid)
                p99.append(merged.get_value_at_percentile(99.0) / 1000)
            if xs:
                errors = [[e[0] for e in rps_err], [e[1] for e in rps_err]]
                rps_ax.errorbar(xs, rps, yerr=errors, marker="o", capsize=3, label=variant)
                p99_ax.plot(xs, p99, marker="o", label=variant)
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
    axes[0][-1].legend(title="variant", fontsize=7)
    return save(fig, path)


def micro(bench_json: dict[str, Any], doc: dict[str, Any], path: Path) -> Path:
    """Per-operation cost of each micro-benchmark, median with IQR bars, one panel a group."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in bench_json["benchmarks"]:
        groups.setdefault(b["group"] or "ungrouped", []).append(b)
    names = sorted(groups)
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(SIZE[0] * 1.4, 2.6 * rows + 0.8), dpi=DPI)
    fig.suptitle("Micro-benchmarks: cost per operation (median, bars = interquartile range)")
    fig.text(0.01, 0.005, footer(doc), fontsize=7, color="#555555")
    flat = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for ax, group in zip(flat, names, strict=False):
        items = sorted(groups[group], key=lambda b: b["stats"]["median"])
        scale, unit = time_unit(max(b["stats"]["median"] for b in items))
        labels = [_short_name(b) for b in items]
        med = [b["stats"]["median"] * scale for b in items]
        low = [(b["stats"]["median"] - b["stats"]["q1"]) * scale for b in items]
        high = [(b["stats"]["q3"] - b["stats"]["median"]) * scale for b in items]
        ax.barh(labels, med, xerr=[low, high], capsize=3, color="#4c72b0")
        ax.set_title(group, fontsize=10)
        ax.set_xlabel(f"{unit} per operation")
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="x", alpha=0.3)
    for ax in flat[len(names) :]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def time_unit(seconds: float) -> tuple[float, str]:
    if seconds < 1e-6:
        return 1e9, "ns"
    if seconds < 1e-3:
        return 1e6, "µs"
    return 1e3, "ms"


def _short_name(benchmark: dict[str, Any]) -> str:
    """The parametrisation id (``scoped-lifecycle``), or the test name without ``test_``."""
    return str(benchmark.get("param") or str(benchmark["name"]).removeprefix("test_"))
