"""What every figure of the report shares (matplotlib, Agg, PNG): size, the fixed colour and
marker of each variant, the environment footer, saving.

Each command draws its own figures with these (bench/load/figures.py, bench/micro/report.py,
the pitfall, pool and cost reports), so every figure is readable without the text around
it: a title, axis labels with units, a legend, and the environment in a footer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bench.common import colours
from bench.common.colours import MARKERS as MARKERS  # re-exported: figure modules use them
from bench.common.colours import PALETTE as PALETTE
from bench.common.result_files import RunHeader

SIZE = (10.0, 5.6)  # inches
DPI = 100  # → 1000 × 560 px
AXIS_LINESTYLES = ["--", ":", "-."]
"""Line styles of a variant's second, third, fourth series (other axis values)."""


def variant_of(series: str) -> str:
    """The variant a series belongs to: ``scoped+pool32`` → ``scoped``."""
    return series.split("+", 1)[0]


def style(series: str) -> tuple[str, str]:
    """(colour, marker) of *series*' variant: fixed per variant name (``bench.common.colours``)."""
    return colours.style(variant_of(series))


def line_style(series: str, order: Sequence[str] | None = None) -> dict[str, Any]:
    """Matplotlib keyword arguments for *series*: its variant's colour and marker.

    Series of one variant with different axis values (``scoped+pool10``, ``scoped+pool32``)
    keep the colour and marker; in *order* (the run's series as it declares them), the first
    draws solid and filled, the next dashed and hollow, then dotted, dash-dotted. Without
    *order*, a series with axis values draws dashed and hollow.
    """
    colour, marker = style(series)
    kwargs: dict[str, Any] = {"color": colour, "marker": marker, "linestyle": "-"}
    if order is not None:
        variant = variant_of(series)
        siblings = [s for s in order if variant_of(s) == variant]
        rank = siblings.index(series) if series in siblings else 0
    else:
        rank = 1 if "+" in series else 0
    if rank:
        kwargs |= {
            "linestyle": AXIS_LINESTYLES[(rank - 1) % len(AXIS_LINESTYLES)],
            "markerfacecolor": "white",
        }
    return kwargs


def legend_outside(ax: Any, title: str, **kwargs: Any) -> None:
    """A legend right of the axes, never over the data (none when nothing is labelled)."""
    if not ax.get_legend_handles_labels()[0]:
        return
    ax.legend(
        title=title, fontsize=8, title_fontsize=8, loc="upper left",
        bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs,
    )  # fmt: skip


def footer(doc: dict[str, Any] | RunHeader) -> str:
    """The machine, versions, placement, run and commit: one line under every figure."""
    if isinstance(doc, RunHeader):
        doc = {"environment": doc.environment, "run_id": doc.run_id}
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


def sign(fig: Figure, doc: dict[str, Any] | RunHeader) -> None:
    """Put the environment footer on *fig*."""
    fig.text(0.01, 0.01, footer(doc), fontsize=7, color="#555555")


def figure(title: str, doc: dict[str, Any] | RunHeader) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    ax.set_title(title, fontsize=12)
    sign(fig, doc)
    return fig, ax


def save(fig: Figure, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
