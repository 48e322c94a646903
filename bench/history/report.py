"""The history's report section, its figure and README's one line per step.

The figure: instructions per GET, one line per strategy, across each varied package's
releases (FastAPI left, SQLAlchemy right), the steps annotated with their change; a variant
that cannot run in a set is marked there (×, at the foot of the axes), never drawn as a gap
left unexplained. The section then lists every set (what moved with it, what cannot run)
and every step with its packages and, for the explained ones, its top packages and functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common.blocks import (
    PLOTS,
    Block,
    bullets,
    h1,
    h2,
    img,
    p,
    register_readme_summary,
    register_section,
    table,
    write_report,
)
from bench.common.result_files import HistoryFile, load_document
from bench.common.run_folder import RunFolder
from bench.history import steps as steps_
from bench.history.sets import VARIED, VersionSet, series, version_of

FIGURE = "history-get.png"


def load(folder: Path) -> dict[str, Any]:
    """*folder*'s history.json, validated (``ResultFileError``: one line)."""
    return load_document(RunFolder(folder).history, HistoryFile)


def _series(doc: dict[str, Any]) -> list[tuple[str, list[VersionSet]]]:
    pins: dict[str, str] = next((s["packages"] for s in doc["sets"] if s["name"] == "baseline"), {})
    every = [VersionSet.parse(s["name"]) for s in doc["sets"]]
    return [(pkg, line) for pkg in VARIED if pins and len(line := series(every, pkg, pins)) > 1]


def figure(doc: dict[str, Any], path: Path, endpoint: str = "get") -> Path | None:
    """Instructions per *endpoint* request per strategy across versions, steps annotated."""
    from bench.common import plots

    lines = _series(doc)
    if not lines:
        return None
    pins = next(s["packages"] for s in doc["sets"] if s["name"] == "baseline")
    points = {(q["set"], q["variant"]): q for q in doc["points"] if q["endpoint"] == endpoint}
    entries = {s["name"]: s for s in doc["sets"]}
    widths = [max(3, len(line)) for _, line in lines]
    fig, axes = plots.plt.subplots(
        1, len(lines), figsize=(13.0, 5.8), dpi=plots.DPI, sharey=True,
        gridspec_kw={"width_ratios": widths}, squeeze=False,
    )  # fmt: skip
    step_of = {
        (s["after"], s["variant"]): s for s in doc.get("steps", []) if s["endpoint"] == endpoint
    }
    for ax, (package, line) in zip(axes[0], lines, strict=True):
        xs = range(len(line))
        for variant in doc["settings"]["variants"]:
            ys = [
                points[s.name, variant]["instructions_per_request"] / 1000
                if (s.name, variant) in points
                else None
                for s in line
            ]
            have = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if have:
                ax.plot(*zip(*have, strict=True), label=variant, **plots.line_style(variant))
            for x, s in enumerate(line):
                if variant in entries[s.name].get("cannot_run", {}):
                    colour, _ = plots.style(variant)
                    ax.plot(
                        [x], [0.02], marker="x", color=colour, transform=ax.get_xaxis_transform()
                    )
                step = step_of.get((s.name, variant))
                if step is not None and ys[x] is not None:
                    ax.annotate(
                        f"{step['change_percent']:+.1f} %", (x, ys[x]), textcoords="offset points",
                        xytext=(4, 6), fontsize=7, color=plots.style(variant)[0],
                    )  # fmt: skip
        ax.set_xticks(list(xs))
        ax.set_xticklabels(
            [version_of(s, package, pins) + (" ★" if s.package is None else "") for s in line],
            rotation=45, ha="right", fontsize=8,
        )  # fmt: skip
        ax.set_xlabel(steps_.NAMES.get(package, package))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"instructions per {endpoint.upper()} (thousands)")
    plots.legend_outside(axes[0][-1], "strategy")
    fig.suptitle(
        f"Instructions per {endpoint.upper()} across releases (★ main's pins; × cannot run; "
        "labels: steps beyond the repeat spread)",
        fontsize=11,
    )
    plots.sign(fig, doc)
    return plots.save(fig, path)


def _set_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in doc["sets"]:
        others = {k: v for k, v in s.get("changed", {}).items() if k != s.get("package")}
        cannot = "; ".join(f"{v}: {why}" for v, why in s.get("cannot_run", {}).items())
        rows.append(
            [
                s["name"],
                ", ".join(f"{k} {v}" for k, v in others.items()) or "–",
                s["status"] + (f" ({s['error'][:120]})" if s.get("error") else ""),
                cannot or "–",
            ]
        )
    return rows


def _point_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    variants = doc["settings"]["variants"]
    points = {(q["set"], q["variant"], q["endpoint"]): q for q in doc["points"]}
    entries = {s["name"]: s for s in doc["sets"]}
    pins = entries.get("baseline", {}).get("packages", {})
    rows = []
    for package, line in _series(doc):
        for s in line:
            for endpoint in doc["settings"]["endpoints"]:
                cells = []
                for v in variants:
                    q = points.get((s.name, v, endpoint))
                    if q is not None:
                        cells.append(
                            f"{q['instructions_per_request']:,.0f} ±{q['spread_percent']:.2f} %"
                        )
                    elif v in entries[s.name].get("cannot_run", {}):
                        cells.append("cannot run")
                    else:
                        cells.append(entries[s.name]["status"])
                version = version_of(s, package, pins) + (" (main)" if s.package is None else "")
                rows.append([f"{steps_.NAMES.get(package, package)} {version}", endpoint, *cells])
    return ["set", "endpoint", *variants], rows


def _step_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in doc.get("steps", []):
        others = {k: v for k, v in s.get("changed", {}).items() if k != s["package"]}
        rows.append(
            [
                steps_.title(s),
                s["variant"],
                s["endpoint"],
                f"{s['change_percent']:+.2f} %",
                f"±{s['noise_percent']:.2f} %",
                ", ".join(f"{k} {v}" for k, v in others.items()) or "–",
                ", ".join(f"{n} {d / 1000:+,.1f} k" for n, d in s.get("packages", [])[:3]) or "–",
                ", ".join(f"{f} {d / 1000:+,.1f} k" for f, _, d in s.get("functions", [])[:3])
                or "–",
            ]
        )
    return rows


@register_section("history")
def section(folder: Path) -> tuple[list[Block], list[Path]]:
    """The history blocks of *folder* (nothing when it has no history.json)."""
    if not RunFolder(folder).has_history():
        return [], []
    doc = load(folder)
    st = doc["settings"]
    written = []
    (folder / PLOTS).mkdir(exist_ok=True)
    drawn = figure(doc, folder / PLOTS / FIGURE)
    blocks = [
        h2("Cost history across releases (valgrind)"),
        p(
            "Instructions per request of the server process, counted by callgrind as "
            "`sessionbench cost` does, in one environment per version set: main's pins "
            "(the baseline), then one package at another release with everything else at "
            "main's pins — except what that release's own requirements force to move, named "
            f"per set. {st['repeats']} repeats per point; a step is a change between "
            "neighbouring releases larger than the two points' spreads added. A variant that "
            "does not start or fails the contract check in a set cannot run there. "
            f"Status {doc['status']}."
        ),
    ]
    if drawn is not None:
        written.append(drawn)
        blocks.append(img(f"{PLOTS}/{drawn.name}", "instructions per GET across releases"))
    headers, rows = _point_rows(doc)
    blocks += [
        p("Instructions per request (median of the repeats ± their spread):"),
        table(headers, rows),
        p("The sets: what moved besides the package varied, and what cannot run."),
        table(["set", "also moved", "status", "cannot run"], _set_rows(doc)),
    ]
    step_rows = _step_rows(doc)
    if step_rows:
        blocks += [
            p(
                f"Steps, largest first. The {st.get('explain', 3)} largest are explained from the "
                "two sets' callgrind profiles (newer minus older, per request): the packages "
                "(self instructions; the interpreter's groups stand for pure-Python code) and "
                "the functions (inclusive) that moved most."
            ),
            table(["step", "variant", "endpoint", "change", "spreads", "also moved",
                   "top packages", "top functions"], step_rows),
        ]  # fmt: skip
    else:
        blocks.append(p("No change between neighbouring releases exceeds its repeat spread."))
    return blocks, written


@register_readme_summary("history")
def readme_summary(folder: Path, rel: Path) -> list[Block]:
    """README: one line per step (the largest first), with the figure."""
    if not RunFolder(folder).has_history():
        return []
    doc = load(folder)
    lines = [steps_.line(s) for s in doc.get("steps", [])]
    out = [
        p(
            f"Cost history across releases ([{rel}/report.md]({rel}/report.md)): "
            f"{len(doc['sets'])} version sets, "
            + (f"{len(lines)} steps beyond the repeat spread:" if lines else "no step.")
        )
    ]
    if (folder / PLOTS / FIGURE).exists():
        out.append(img(f"{rel}/{PLOTS}/{FIGURE}", "instructions per GET across releases"))
    if lines:
        out.append(bullets(lines))
    return out


def build_alone(folder: Path) -> list[Path]:
    """report.md and index.html for a history folder."""
    doc = load(folder)
    env = doc["environment"]
    title = f"sessionbench history — {doc['run_id']}"
    blocks, written = section(folder)
    return [
        *written,
        *write_report(
            folder,
            [
                h1(title),
                p(
                    f"{env.get('cpu_model')} × {env.get('cpu_count')}, run {doc.get('started')}, "
                    f"command: {' '.join(doc.get('command', []))}."
                ),
                *blocks,
            ],
            title,
        ),
    ]
