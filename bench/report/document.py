"""``sessionbench report``: plots, ``report.md`` and a self-contained ``index.html`` for a run.

The report is built once as a list of blocks (headings, paragraphs, tables, images,
lists) and rendered twice, to Markdown and to HTML, so both always say the same.
Images are referenced relatively (``plots/…png``): the folder opens from disk. This module
only assembles: each command's package builds its own section and figures
(bench/load/report.py, and the sections of bench/report/sections.py); the scorecard and the
questions read across them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.common.blocks import Block, bullets, h1, h2, p, write_report
from bench.common.results import Run
from bench.common.run_folder import COST, PITFALLS, RUN, RunFolder
from bench.cost import report as cost_report
from bench.load import report as load_report
from bench.pitfalls import report as pitfalls_report
from bench.report import questions, scorecard, sections


def build(folder: Path, extra: Sequence[Path] = ()) -> list[Path]:
    """Write plots, report.md and index.html into *folder*; return what was written.

    *extra*: other run folders the scorecard and the questions may read (the long-window
    overload pass, the driver run)."""
    files = RunFolder(folder)
    if not files.has(RUN) and not files.has(PITFALLS):
        if files.has_history() and not files.has(COST):
            from bench.history import report as history_report

            return history_report.build_alone(folder)  # only a history
        return cost_report.build_alone(folder)  # only a cost run
    if not files.has(RUN):  # a folder with only a pitfall matrix
        lead = [h2("Scorecard"), *scorecard.blocks(folder)]
        return pitfalls_report.build_alone(folder, lead=lead)
    run = Run.read(folder)
    doc = run.file
    files.plots.mkdir(exist_ok=True)
    written: list[Path] = []
    title = f"sessionbench report — {doc.run_id}"
    blocks: list[Block] = [
        h1(title),
        p(
            f"{doc.environment.get('cpu_model')} × {doc.environment.get('cpu_count')}, "
            f"run {doc.started} ({doc.settings.mode} mode, status {doc.status})."
        ),
    ]
    blocks += [
        h2("Scorecard"),
        *scorecard.blocks(folder, extra),
        *questions.blocks([folder, *extra]),
    ]
    found, plotted = load_report.lead(folder, run)
    blocks += found
    written += plotted
    for section in sections.sections():
        found, plotted = section(folder)
        blocks += found
        written += plotted
    blocks += load_report.tables(run)
    blocks += [
        *load_report.method(doc),
        h2("How to read this"),
        bullets(load_report.HOW_TO_READ),
    ]
    return [*written, *write_report(folder, blocks, title)]
