"""The commands' report sections, in the order the report shows them, imported statically.

A command's report module registers its section (and its README summary) with
``bench.common.blocks`` when imported; this module imports every one of them by name, so
the report never imports a command by string and ``tests/test_layout.py`` sees each edge.
A command with a new section adds its module here and its name to ``ORDER``.
"""

from __future__ import annotations

from bench.common.blocks import README_SUMMARIES, SECTIONS, ReadmeSummary, Section
from bench.cost import report as cost_report
from bench.history import report as history_report
from bench.micro import report as micro_report
from bench.pitfalls import report as pitfalls_report
from bench.pool import report as pool_report

MODULES = (pitfalls_report, pool_report, cost_report, history_report, micro_report)
"""The modules that register sections (imported above; listed so none is 'unused')."""
ORDER = ("pitfalls", "pool", "cost", "history", "micro")
"""Sections in report order (after the load run's figures, before its tables); a section
registered under another name follows these."""


def sections() -> list[Section]:
    """Every registered report section, in :data:`ORDER`."""
    names = [*(n for n in ORDER if n in SECTIONS), *(n for n in SECTIONS if n not in ORDER)]
    return [SECTIONS[name] for name in names]


def readme_summaries() -> list[ReadmeSummary]:
    """Every registered README summary (of an extra folder), in registration order."""
    return list(README_SUMMARIES.values())
