"""What the runner shows in the terminal: a progress bar with ETA, and the summary table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bench.common.result_files import LoadCell
from bench.common.results import GroupSummary, censored_percentiles, group_summary

console = Console(stderr=True)
if not console.is_terminal:
    console.width = max(console.width, 150)  # logs and CI: do not squeeze the table


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[str, int, int], None]]:
    """A callback ``(description, done, total)``: a live bar on a terminal, else plain lines."""
    if not console.is_terminal:

        def plain(description: str, done: int, total: int) -> None:
            console.print(f"[{done}/{total}] {description}", highlight=False)

        yield plain
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("ETA"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("starting", total=total)

        def update(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        yield update


def summary_table(cells: Sequence[LoadCell]) -> Table:
    """Per (scenario, users, series): valid trials, req/s, server CPU, p50, p99, fairness."""
    table = Table(title="median over valid trials (CV = coefficient of variation)")
    for column in ("scenario", "users", "variant", "valid", "req/s", "CV", "server µs/req",
                   "CV ", "p50 ms", "p99 ms", "fair", "notes"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("variant", "notes") else "right")
    rows = sorted(group_summary(cells), key=lambda r: (r.scenario, r.users, -(r.rps or 0)))
    for row in rows:
        measured = row.rps is not None
        table.add_row(
            row.scenario,
            str(row.users),
            row.variant,
            f"{row.valid}/{row.trials}",
            f"{row.rps:.0f}" if row.rps is not None else "–",
            f"{row.rps_cv:.1f} %" if measured else "",
            f"{row.server_us:.0f}" if measured and row.server_us == row.server_us else "–",
            f"{row.server_us_cv:.1f} %" if measured else "",
            f"{row.p50_us / 1000:.2f}" if measured else "–",
            _p99(row) if measured else "–",
            f"{row.jain:.2f}" if measured and row.jain == row.jain else "–",
            _short(row.reasons),
        )
    return table


def _p99(row: GroupSummary) -> str:
    """The group's p99 in ms; "≥ X (censored)" when it is only a lower bound."""
    text = f"{row.p99_us / 1000:.2f}"
    return f"≥ {text} (censored)" if "p99" in censored_percentiles(row.cells) else text


def _short(reasons: list[str], width: int = 60) -> str:
    if not reasons:
        return ""
    first = reasons[0].splitlines()[0]
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return (first[: width - len(more)] + more) if len(first) > width else first + more


def rel_path(path: Path) -> str:
    """*path* relative to the working directory when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
