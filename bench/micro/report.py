"""The report's micro-benchmark section and its figure, from the folder's micro.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from bench.common.blocks import PLOTS, Block, bullets, h2, img, p, register_section, table
from bench.common.plots import DPI, SIZE, footer
from bench.common.result_files import MicroBenchmark, MicroFile, RunHeader, load
from bench.common.results import Run
from bench.common.run_folder import RUN, RunFolder
from bench.common.stats import lag1_autocorrelation, median_ci
from bench.micro import GROUPS


def time_unit(seconds: float) -> tuple[float, str]:
    if seconds < 1e-6:
        return 1e9, "ns"
    if seconds < 1e-3:
        return 1e6, "µs"
    return 1e3, "ms"


def _short_name(benchmark: MicroBenchmark) -> str:
    """The parametrisation id (``scoped-lifecycle``), or the test name without ``test_``."""
    return str(benchmark.param or benchmark.name.removeprefix("test_"))


def figure(data: MicroFile, doc: dict[str, Any] | RunHeader, path: Path) -> Path:
    """Per-operation cost of each micro-benchmark, median with IQR bars, one panel a group."""
    groups: dict[str, list[MicroBenchmark]] = {}
    for b in data.benchmarks:
        groups.setdefault(b.group or "ungrouped", []).append(b)
    names = sorted(groups)
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(SIZE[0] * 1.4, 2.6 * rows + 0.8), dpi=DPI)
    fig.suptitle("Micro-benchmarks: cost per operation (median, bars = interquartile range)")
    fig.text(0.01, 0.005, footer(doc), fontsize=7, color="#555555")
    flat = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for ax, group in zip(flat, names, strict=False):
        items = sorted(groups[group], key=lambda b: b.stats.median)
        scale, unit = time_unit(max(b.stats.median for b in items))
        labels = [_short_name(b) for b in items]
        med = [b.stats.median * scale for b in items]
        low = [(b.stats.median - b.stats.q1) * scale for b in items]
        high = [(b.stats.q3 - b.stats.median) * scale for b in items]
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


def _row(b: MicroBenchmark) -> list[str]:
    st = b.stats
    median, low, high = median_ci(st.data) if st.data else (st.median,) * 3
    half = 100 * max(median - low, high - median) / median
    scale, unit = time_unit(st.median)
    rho = lag1_autocorrelation([st.data]) if st.data else None
    return [
        b.group or "", str(b.param or b.name),
        f"{st.median * scale:.3g} {unit}", f"{st.iqr * scale:.2g} {unit}",
        f"±{half:.1f} %", str(st.rounds), f"{rho:+.2f}" if rho is not None else "–",
    ]  # fmt: skip


def _header(folder: RunFolder) -> dict[str, Any] | RunHeader:
    """The folder's run.json (the machine for the figure's footer), or what stands in for it."""
    if folder.has(RUN):
        return Run.read(folder.path).file
    return {"run_id": folder.path.name, "environment": {}}


@register_section("micro")
def section(path: Path) -> tuple[list[Block], list[Path]]:
    """The micro-benchmark section of *path*'s report (nothing without a micro.json)."""
    folder = RunFolder(path)
    if not folder.micro.exists():
        return [], []
    data = load(folder.micro, MicroFile)
    folder.plots.mkdir(exist_ok=True)
    plot = figure(data, _header(folder), folder.plots / "micro.png")
    ordered = sorted(data.benchmarks, key=lambda b: (b.group or "", b.stats.median))
    blocks = [
        h2("Micro-benchmarks"),
        p(
            "Per-operation cost (pytest-benchmark, batches on one uvloop loop, timer divided by "
            "the batch). CI half-width: the wider side of the order-statistic interval of the "
            "median over rounds, relative to the median: ≥ 95 % coverage from 6 rounds if the "
            "rounds were independent. They are not quite: consecutive rounds share the "
            "machine's drift (lag-1 ρ column), and where ρ > 0 the true coverage is lower than "
            "that. Benchmarks timed minutes apart also differ by the machine's speed swings, so "
            "these are costs per operation, not verdicts between strategies (those come from "
            "the co-scheduled pass and the instruction counts)."
        ),
        bullets([f"{group}: {what}" for group, what in GROUPS.items()]),
        img(f"{PLOTS}/{plot.name}", "micro-benchmark costs per operation"),
        table(
            ["group", "benchmark", "median", "IQR", "CI half-width", "rounds", "lag-1 ρ"],
            [_row(b) for b in ordered],
        ),
    ]
    return blocks, [plot]
