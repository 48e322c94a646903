"""The figures: one fixed colour and marker per variant, ranked dots, censored tails, legends."""

from pathlib import Path
from typing import Any

import matplotlib.colors as mcolors
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import variants
from bench.common import plots
from bench.common.result_files import RunFile
from bench.common.results import series_names
from bench.load import figures as load_figures
from tests.fake_runs import fake_doc


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Figures the plot functions would save, kept open for inspection."""
    kept: list[Figure] = []

    def keep(fig: Figure, path: Path) -> Path:
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.canvas.draw()
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "save", keep)
    return kept


def _hex(colour: Any) -> str:
    return mcolors.to_hex(colour)


def _drawn(fig: Figure) -> set[tuple[str, str]]:
    """(colour, marker) of every data point drawn (not the invalid-trial crosses)."""
    return {
        (_hex(line.get_color()), str(line.get_marker()))
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_marker() not in ("None", "", None, "x", "|", "_") and len(line.get_xdata())
    }


def test_no_two_variants_share_colour_and_marker() -> None:
    styles = [plots.style(name) for name in variants.VARIANTS]
    assert len(plots.PALETTE) >= 12 and len(set(plots.PALETTE)) == len(plots.PALETTE)
    assert len(set(styles)) == len(styles)  # colour + marker never shared
    assert len({c for c, _ in styles}) == len(styles)  # today even the colours alone differ
    assert "x" not in plots.MARKERS  # reserved for invalid trials
    # Fixed per name (bench/common/colours.py), so the same in every figure and every run.
    assert plots.style("scoped") == (plots.PALETTE[0], plots.MARKERS[0])
    assert plots.style("scoped+pool32") == plots.style("scoped")
    # A variant outside the registry gets a combination no registered variant has.
    assert plots.style("somebody_elses") not in styles
    assert plots.style("somebody_elses") == plots.style("somebody_elses+w2")


def test_axis_series_keep_the_colour_and_differ_by_line_and_fill() -> None:
    doc = fake_doc({"scoped+pool10": 100, "scoped+pool32": 100, "context+pool10": 100})
    order = series_names(doc)
    first, second = (plots.line_style(s, order) for s in ("scoped+pool10", "scoped+pool32"))
    assert first["color"] == second["color"] and first["marker"] == second["marker"]
    assert first["linestyle"] == "-" and "markerfacecolor" not in first
    assert second["linestyle"] == "--" and second["markerfacecolor"] == "white"
    assert plots.line_style("context+pool10", order)["linestyle"] == "-"


def test_throughput_is_a_ranked_dot_plot_in_the_variants_styles(
    figures: list[Figure], tmp_path: Path
) -> None:
    rates = {"depends": 1000, "raw": 3000, "context": 1500, "scoped": 1200}
    doc = fake_doc(rates, users=(4, 16))
    load_figures.throughput(RunFile.model_validate(doc), "read", tmp_path / "t.png")
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.get_yticklabels()]
    assert [ax.get_title() for ax in panels] == ["4 concurrent users", "16 concurrent users"]
    for ax in panels:
        top_down = [t.get_text() for t in ax.get_yticklabels()][::-1]
        assert top_down == ["raw", "context", "scoped", "depends"]  # fastest on top
        # one dot per series, no line joining concurrencies
        assert all(line.get_linestyle() == "None" for line in ax.get_lines())
    assert _drawn(fig) == {plots.style(name) for name in rates}


def test_latency_spectrum_draws_a_censored_tail_as_a_lower_bound(
    figures: list[Figure], tmp_path: Path
) -> None:
    doc = fake_doc(
        {"scoped": 1000, "context": 1000},
        extra={"scoped": {"tail_resolved": False}, "context": {"tail_resolved": True}},
    )
    load_figures.latency_spectrum(RunFile.model_validate(doc), "read", 16, tmp_path / "l.png")
    (fig,) = figures
    ax = fig.axes[0]
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    scoped_colour = plots.style("scoped")[0]
    # p99 and p99.9 (and only scoped's) are drawn as lower bounds: arrow up, hollow marker
    assert len(arrows) == 2
    assert all(_hex(a.arrow_patch.get_edgecolor()) == _hex(scoped_colour) for a in arrows)  # type: ignore[attr-defined]
    hollow = [
        line for line in ax.get_lines()
        if line.get_markerfacecolor() == "white" and _hex(line.get_color()) == _hex(scoped_colour)
    ]  # fmt: skip
    assert len(hollow) == 2
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("≥ censored") for label in labels)


def test_legends_sit_outside_the_data(figures: list[Figure], tmp_path: Path) -> None:
    doc = fake_doc({name: 1000 + 10 * i for i, name in enumerate(variants.VARIANTS)})
    load_figures.latency_spectrum(RunFile.model_validate(doc), "read", 16, tmp_path / "l.png")
    load_figures.overhead(RunFile.model_validate(doc), 16, tmp_path / "o.png")
    for fig in figures:
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            box = legend.get_window_extent(renderer)
            assert box.x0 >= ax.get_window_extent(renderer).x1  # right of the axes
        # every variant in its own style, in each figure
        assert _drawn(fig) >= {plots.style(name) for name in variants.VARIANTS}


def test_figures_with_only_old_fields_say_censoring_was_not_recorded(
    figures: list[Figure], tmp_path: Path
) -> None:
    doc = RunFile.model_validate(fake_doc({"depends": 1000}))
    load_figures.latency_spectrum(doc, "read", 16, tmp_path / "l.png")
    texts = [t.get_text() for t in figures[0].axes[0].texts]
    assert any("did not record censoring" in t for t in texts)


def test_line_styles_are_what_matplotlib_accepts() -> None:
    line = Line2D([0], [0], **plots.line_style("scoped+pool32"))
    assert line.get_linestyle() == "--"
