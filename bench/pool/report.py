"""Report section "Pool wait and hold": per-cell pool histograms of a ``--pool-stats`` run.

One figure per scenario and variant (every series of that variant: pool queues, pool
sizes, …, and every user count as its own line): the percentile spectrum of the time a
checkout waited for a connection and of the time it held one. A table per scenario and
user count gives checkouts, barging and the means and tails. Values merge the valid
trials' histograms (invalid ones only when no trial is valid, and then it says so).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib.pyplot as plt

from bench.common import histograms, plots
from bench.common.blocks import (
    PLOTS,
    Block,
    h2,
    img,
    p,
    register_readme_summary,
    register_section,
    table,
)
from bench.common.result_files import LoadCell, RunFile, SeriesInfo
from bench.common.results import Run, censored_percentiles, percentile
from bench.common.run_folder import RunFolder
from bench.common.stats import compare_paired

PERCENTILES = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]


Cell = LoadCell


def _cells(doc: RunFile) -> list[Cell]:
    return [c for c in doc.cells if c.pool_wait_us is not None]


def _hist(cell: Cell, key: str) -> str:
    """*cell*'s encoded pool histogram *key* (``pool_wait_us`` or ``pool_hold_us``)."""
    recorded = cell.pool_wait_us if key == "pool_wait_us" else cell.pool_hold_us
    assert recorded is not None, f"{cell.variant}: no {key}"
    return recorded.histogram


def _barging(cells: list[Cell]) -> tuple[int, int]:
    """Checkouts and barged checkouts summed over *cells*."""
    counts = [c.pool_barging for c in cells if c.pool_barging is not None]
    return sum(b.checkouts for b in counts), sum(b.barged for b in counts)


def _group(cells: list[Cell]) -> tuple[list[Cell], bool]:
    """The valid cells, else all of them; and whether invalid ones are included."""
    valid = [c for c in cells if c.ok]
    return (valid, False) if valid else (cells, True)


def _ms(us: float) -> str:
    return f"{us / 1000:,.1f}"


def _spectrum(encoded: list[str]) -> tuple[list[float], list[float]]:
    merged = histograms.merge(encoded)
    xs = [1 / (1 - q / 100) for q in PERCENTILES]
    ys = [max(merged.get_value_at_percentile(q), 1) / 1000 for q in PERCENTILES]
    return xs, ys


def figure(doc: RunFile, scenario: str, variant: str, path: Path) -> Path | None:
    """Wait and hold percentile spectra of every series of *variant* in *scenario*."""
    series = [n for n, i in doc.variants.items() if _variant(i, n) == variant]
    cells = [c for c in _cells(doc) if c.scenario == scenario and c.variant in series]
    if not cells:
        return None
    fig, (wait_ax, hold_ax) = plt.subplots(1, 2, figsize=plots.SIZE, dpi=plots.DPI)
    fig.suptitle(f"Pool wait and hold per checkout — {variant}, {scenario}")
    plots.sign(fig, doc)
    for name in series:
        for users in sorted({c.users for c in cells}):
            group, invalid = _group([c for c in cells if c.variant == name and c.users == users])
            if not group:
                continue
            label = f"{name}, {users} users" + (" (invalid)" if invalid else "")
            for ax, key in ((wait_ax, "pool_wait_us"), (hold_ax, "pool_hold_us")):
                xs, ys = _spectrum([_hist(c, key) for c in group])
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ticks = [1 / (1 - q / 100) for q in (0, 90, 99, 99.9, 99.99)]
    for ax, what in ((wait_ax, "waited for a connection"), (hold_ax, "held a connection")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ticks, ["p0", "p90", "p99", "p99.9", "p99.99"])
        ax.set_ylabel(f"ms {what} (log)")
        ax.grid(True, alpha=0.3)
    wait_ax.legend(fontsize=7)
    return plots.save(fig, path)


def _variant(info: SeriesInfo, series: str) -> str:
    """The variant *series* runs (its name where the run did not record one)."""
    return str(info.variant) if info.recorded("variant") else series


def _queue_or_default(info: SeriesInfo) -> str | None:
    """The pool queue the run recorded for the series, "sqlalchemy" where it recorded none."""
    return info.pool_queue if info.recorded("pool_queue") else "sqlalchemy"


def _queue(info: SeriesInfo) -> str:
    if info.variant == "raw":
        return "asyncpg's own"  # --pool-queue applies to SQLAlchemy's pool only
    return str(info.pool_queue) if info.recorded("pool_queue") else "sqlalchemy"


def rows(doc: RunFile, scenario: str, users: int) -> list[list[str]]:
    out = []
    for name, info in doc.variants.items():
        cells = [
            c for c in _cells(doc) if (c.variant, c.scenario, c.users) == (name, scenario, users)
        ]
        group, invalid = _group(cells)
        if not group:
            continue
        wait = histograms.summary(histograms.merge(_hist(c, "pool_wait_us") for c in group))
        hold = histograms.summary(histograms.merge(_hist(c, "pool_hold_us") for c in group))
        checkouts, barged = _barging(group)
        out.append([
            name + (" (invalid)" if invalid else ""),
            _queue(info),
            f"{len(group)}",
            f"{checkouts:,}",
            f"{100 * barged / checkouts:.0f} %" if checkouts else "–",
            _ms(wait["mean"]), _ms(wait["p99"]), _ms(wait["p99.9"]), _ms(wait["max"]),
            _ms(hold["mean"]), _ms(hold["p99"]),
        ])  # fmt: skip
    return out


@register_section("pool")
def section(folder: Path) -> tuple[list[Block], list[Path]]:
    """Blocks and plots of the pool section ([] when the run recorded no pool stats)."""
    path = RunFolder(folder).run
    if not path.exists():
        return [], []
    doc = Run.read(folder).file
    cells = _cells(doc)
    if not cells:
        return [], []
    blocks = [
        h2("Pool wait and hold"),
        p(
            "Measured inside each server (--pool-stats) over the measurement window: per "
            "checkout, the time it waited for a pooled connection and the time it held one "
            "(checkout to check-in, the reset on return included); barged = checkouts that "
            "took a free connection while other checkouts were already waiting. Merged over "
            "the valid trials; times in ms."
        ),
    ]
    written: list[Path] = []
    headers = ["series", "queue", "trials", "checkouts", "barged", "wait mean", "wait p99",
               "wait p99.9", "wait max", "hold mean", "hold p99"]  # fmt: skip
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    for scenario in scenarios:
        for users in sorted({c.users for c in cells if c.scenario == scenario}):
            blocks.append(p(f"{scenario}, {users} users:"))
            blocks.append(table(headers, rows(doc, scenario, users)))
        names = dict.fromkeys(c.variant for c in cells if c.scenario == scenario)
        variants = dict.fromkeys(_variant(doc.variants[n], n) for n in names)
        for variant in variants:
            out = RunFolder(folder).plots / f"pool-{scenario}-{variant}.png"
            made = figure(doc, scenario, variant, out)
            if made is not None:
                written.append(made)
                blocks.append(
                    img(f"{PLOTS}/{made.name}", f"pool wait and hold, {variant}, {scenario}")
                )
    return blocks, written


def _twin(doc: RunFile, name: str, queue: str) -> str | None:
    """The series of *name*'s variant (same other axes) that uses *queue*."""
    info = doc.variants[name]
    for other, o in doc.variants.items():
        same = all(
            getattr(o, k) == getattr(info, k) for k in ("variant", "pool_size", "workers", "server")
        )
        if same and _queue_or_default(o) == queue:
            return other
    return None


def _tail(cells: list[Cell], key: str) -> str:
    value = percentile(cells, key)[0]
    text = f"{value / 1000:,.0f}" if value >= 10_000 else f"{value / 1000:,.1f}"
    return f"≥ {text} (censored)" if key in censored_percentiles(cells) else text


def _timeouts(cells: list[Cell]) -> str:
    """Pool timeouts of followed cells, e.g. ` (3/20,000 timed out at 30 s)`; else ""."""
    counts = [c.timeouts for c in cells if c.timeouts is not None]
    count = sum(t.count for t in counts)
    if not count:
        return ""
    of = sum(t.of for t in counts)
    return f" ({count:,}/{of:,} timed out at {counts[0].at_s:g} s)"


@register_readme_summary("pool")
def readme_summary(folder: Path, rel: Path) -> list[Block]:
    """README's "under overload" table: every series of a --pool-stats run, both queues."""
    path = RunFolder(folder).run
    if not path.exists():
        return []
    doc = Run.read(folder).file
    cells = _cells(doc)
    if not cells:
        return []
    settings = doc.settings
    headers = ["scenario", "variant", "queue", "req/s", "p99 ms", "p99.9 ms", "max ms",
               "fairness", "wait mean ms", "hold mean ms", "barged",
               "req/s, fifo vs sqlalchemy"]  # fmt: skip
    rows: list[list[str]] = []
    for scenario in dict.fromkeys(c.scenario for c in cells):
        for name, info in doc.variants.items():
            group = [c for c in cells if c.variant == name and c.scenario == scenario]
            valid = [c for c in group if c.ok]
            if not valid:
                if group:
                    rows.append([scenario, _variant(info, name), _queue(info),
                                 "no valid trial", *[""] * 8])  # fmt: skip
                continue
            wait = histograms.summary(histograms.merge(_hist(c, "pool_wait_us") for c in valid))
            hold = histograms.summary(histograms.merge(_hist(c, "pool_hold_us") for c in valid))
            checkouts, barged = _barging(valid)
            verdict = ""
            base = _twin(doc, name, "sqlalchemy")
            if info.pool_queue == "fifo" and base is not None:
                by_round = {c.trial: c.measured_rps for c in cells
                            if c.variant == base and c.scenario == scenario and c.ok}  # fmt: skip
                pairs = [(by_round[c.trial], c.measured_rps) for c in valid if c.trial in by_round]
                if pairs:
                    verdict = compare_paired(pairs, higher_is_better=True, unit="req/s").verdict()
            rows.append([
                scenario, _variant(info, name), _queue(info),
                f"{statistics.median(c.measured_rps for c in valid):,.0f}",
                _tail(valid, "p99"), _tail(valid, "p99.9"),
                _tail(valid, "max") + _timeouts(valid),
                f"{statistics.median(c.jain for c in valid):.2f}",
                _ms(wait["mean"]), _ms(hold["mean"]),
                f"{100 * barged / checkouts:.0f} %" if checkouts else "–",
                verdict,
            ])  # fmt: skip
    users = ", ".join(str(u) for u in settings.users)
    followed = (
        " Followed windows (`--follow`): every request started in the window is measured to "
        "its end (the users keep running), so no tail is censored; a request answered 503 "
        "after `pool_timeout` counts at its latency, shown as k/n timed out."
        if settings.follow
        else ""
    )
    return [
        h2("Under overload: who waits, and the FIFO pool queue"),
        p(
            f"Run `{doc.run_id}`: {users} users on a pool of "
            f"{', '.join(str(s) for s in settings.pool_sizes or [])}, {settings.warmup:g} s + "
            f"{settings.duration:g} s windows, {settings.trials} rounds, both pool queues "
            "interleaved (`--pool-queue sqlalchemy,fifo`), pool wait and hold recorded inside "
            "the servers (`--pool-stats`, about 1 % of a request: both queues pay it). "
            "Tails are the median over rounds of each round's percentile; ≥ … (censored): "
            "requests were still waiting when the window closed. barged: checkouts that took a "
            "free connection while others were already queued for one. Full report: "
            f"[{rel}/report.md]({rel}/report.md)." + followed
        ),
        table(headers, rows),
    ]
