"""The explanations shown: text lines for the CLI, report blocks, and two figures (one pair's
groups and functions; every variant's groups against ``context`` in one chart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common.blocks import PLOTS, Block, h2, img, p, table
from bench.common.result_files import CostFile
from bench.cost.explain import Explanation, explain, explainable
from bench.cost.packages import INTERPRETER

BASELINE = "context"
ENDPOINTS = ("get", "write")
LIMITS = (
    "Attribution is by C function, from callgrind's per-function self costs. CPython 3.11 "
    "runs Python code inside its eval loop and callgrind sees no Python frames (3.12's "
    "perf trampoline would not help: valgrind does not read perf maps), so the pure-Python "
    "packages — fastapi, starlette, uvicorn, anyio, asyncio's Python half, most of "
    "sqlalchemy — cannot be told apart: their work is the interpreter's groups (eval loop = "
    "Python/ceval.c; objects = Objects/*.c: dicts, attributes, tuples, frames, generators; "
    "allocator = obmalloc; GC = gcmodule; runtime = the rest of libpython). Compiled code is "
    "named by its object file: asyncpg, uvloop, httptools, pydantic_core, greenlet, "
    "sqlalchemy's Cython modules, asyncio's C accelerator (_asyncio). Group rows are self "
    "instructions and add up to the total; function rows are sorted by inclusive difference "
    "(callees included, so they overlap and are not added)."
)


def _k(value: float, _: object = None) -> str:
    return f"{value / 1000:+,.0f} k" if value else "0"


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(_k)


def _n(value: float) -> str:
    return f"{value:+,.0f}"


def lines(e: Explanation, top: int = 8) -> list[str]:
    """The CLI's text: total, packages, groups, functions."""
    out = [
        f"{e.a} vs {e.b}, {e.endpoint} at {e.clients} client(s): "
        f"{_n(e.measured_diff)} instructions per request ({e.percent(e.measured_diff):+.2f} %, "
        f"rows' spreads ±{e.spread:,.0f}); groups add up to {_n(e.grouped_diff)} "
        + ("(within the spreads)" if e.adds_up() else "(**outside** the spreads)"),
        "  by package (self instructions per request):",
    ]
    out += [f"    {g.name:26s} {_n(g.diff):>10s}  ({e.percent(g.diff):+.2f} %)" for g in e.packages]
    out.append("  interpreter, by part:")
    out += [
        f"    {g.name:26s} {_n(g.diff):>10s}"
        for g in e.groups
        if g.name.startswith(f"{INTERPRETER}:")
    ]
    for title, functions in (
        ("top functions by inclusive difference (frames holding over half of every request "
         "left out; self difference beside):", e.functions),
        ("top functions by self difference (inclusive beside):", e.by_self),
    ):  # fmt: skip
        out.append(f"  {title}")
        out += [
            f"    {f.name[:48]:48s} {f.object[:14]:14s} {_n(f.inclusive_diff):>10s} "
            f"{_n(f.self_diff):>10s}"
            for f in functions[:top]
        ]
    return out


def pair_figure(e: Explanation, doc: CostFile, path: Path) -> Path:
    """Groups (self, adding up to the total) left, top functions (inclusive) right."""
    from bench.common import plots

    fig, (left, right) = plots.plt.subplots(1, 2, figsize=(12.0, 5.6), dpi=plots.DPI)
    groups = [g for g in e.groups if abs(g.diff) >= 0.002 * abs(e.measured_diff)][::-1]
    names = [g.name for g in groups] + ["total (measured)"]
    values = [g.diff for g in groups] + [e.measured_diff]
    colours = ["#d62728" if v > 0 else "#2ca02c" for v in values[:-1]] + ["#333333"]
    left.barh(names, values, color=colours)
    left.axvline(0, color="#999999", linewidth=0.8)
    left.set_title("by group: self instructions per request (add up to the total)", fontsize=10)
    left.set_xlabel(f"instructions per request, {e.a} − {e.b}")
    funcs = e.functions[::-1]
    right.barh(
        [f"{f.name[:40]} [{f.object[:12]}]" for f in funcs],
        [f.inclusive_diff for f in funcs],
        color=["#d62728" if f.inclusive_diff > 0 else "#2ca02c" for f in funcs],
    )
    right.axvline(0, color="#999999", linewidth=0.8)
    right.set_title("top functions: inclusive difference (overlap; loop frames out)", fontsize=10)
    for ax in (left, right):
        ax.xaxis.set_major_formatter(_thousands())
    right.set_xlabel("instructions per request")
    right.tick_params(axis="y", labelsize=7)
    fig.suptitle(
        f"Why {e.a} executes {e.percent(e.measured_diff):+.1f} % instructions per "
        f"{e.endpoint.upper()} vs {e.b} ({e.clients} client)",
        fontsize=12,
    )
    plots.sign(fig, doc)
    return plots.save(fig, path)


def all_figure(es: list[Explanation], doc: CostFile, path: Path) -> Path:
    """Every variant's difference vs the baseline, stacked by group: one bar per variant."""
    from bench.common import plots

    fig, ax = plots.figure(
        f"Where each variant's extra instructions per {es[0].endpoint.upper()} go, vs "
        f"{es[0].b} ({es[0].clients} client; self instructions by group)",
        doc,
    )
    totals: dict[str, float] = {}
    for e in es:
        for part in e.groups:
            totals[part.name] = totals.get(part.name, 0.0) + abs(part.diff)
    shown = sorted(totals, key=lambda n: -totals[n])[:8]
    es = sorted(es, key=lambda e: e.measured_diff)
    labels = [e.a for e in es]
    for index, name in enumerate([*shown, "other groups"]):
        values = [
            sum(p.diff for p in e.groups if (p.name == name) or (name == "other groups"
                and p.name not in shown))
            for e in es
        ]  # fmt: skip
        pos = [max(v, 0.0) for v in values]
        neg = [min(v, 0.0) for v in values]
        colour = plots.PALETTE[index % len(plots.PALETTE)]
        ax.barh(labels, pos, left=_stack(es, shown[:index], name, 1), color=colour, label=name)
        ax.barh(labels, neg, left=_stack(es, shown[:index], name, -1), color=colour)
    ax.scatter([e.measured_diff for e in es], labels, color="black", marker="|", s=200,
               zorder=3, label="measured total")  # fmt: skip
    ax.axvline(0, color="#999999", linewidth=0.8)
    ax.xaxis.set_major_formatter(_thousands())
    ax.set_xlabel(f"instructions per request, variant − {es[0].b}")
    ax.legend(fontsize=8, loc="lower right")
    return plots.save(fig, path)


def _stack(es: list[Explanation], before: list[str], name: str, sign: int) -> list[float]:
    """Where *name*'s bar starts: the same-signed bars of the packages drawn before it."""
    out = []
    for e in es:
        parts = {p.name: p.diff for p in e.groups}
        prior = [parts.get(n, 0.0) for n in before]
        out.append(sum(v for v in prior if (v > 0) == (sign > 0) and v != 0))
    return out


def blocks(folder: Path, doc: CostFile) -> tuple[list[Block], list[Path]]:
    """The report's explain blocks: per endpoint, a figure and a table of every variant vs
    ``context``, then each variant's top functions (nothing without profiles); the figures."""
    found = explainable(folder)
    written: list[Path] = []
    if not found:
        return [], written
    out = [h2(f"Where the instructions go: each variant against {BASELINE} (callgrind)"), p(LIMITS)]
    (folder / PLOTS).mkdir(exist_ok=True)
    for endpoint in ENDPOINTS:
        names = [v for v, ep in found if ep == endpoint and v != BASELINE]
        es = [e for v in names if (e := explain(folder, v, BASELINE, endpoint))]
        if not es:
            continue
        es.sort(key=lambda e: -e.measured_diff)
        figure = all_figure(es, doc, folder / PLOTS / f"explain-{endpoint}.png")
        written.append(figure)
        rows = []
        for e in es:
            top = [g for g in e.packages if g.name != "callgrind residue"][:3]
            rows.append(
                [e.a, f"{_n(e.measured_diff)} ({e.percent(e.measured_diff):+.2f} %)",
                 f"±{e.spread:,.0f}", _n(e.grouped_diff), "yes" if e.adds_up() else "**no**",
                 *[f"{g.name} {_n(g.diff)}" for g in top], *[""] * (3 - len(top))]
            )  # fmt: skip
        out += [
            p(f"{endpoint.upper()} at 1 client: difference per request vs {BASELINE}, the "
              "groups' sum, and the three packages that move most (self instructions)."),
            img(f"{PLOTS}/{figure.name}", f"instruction difference by package, {endpoint}"),
            table(["variant", "measured difference", "spreads", "groups add to", "adds up",
                   "1st package", "2nd package", "3rd package"], rows),
        ]  # fmt: skip
        function_rows = [
            [e.a, f.name[:60], f.object, f.group, _n(f.inclusive_diff), _n(f.self_diff)]
            for e in es
            for f in e.functions[:5]
        ]
        out += [
            p(f"{endpoint.upper()}: each variant's five functions with the largest inclusive "
              f"difference vs {BASELINE}, per request."),
            table(["variant", "function", "object", "group", "inclusive diff", "self diff"],
                  function_rows),
        ]  # fmt: skip
    return out, written
