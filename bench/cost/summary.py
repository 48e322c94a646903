"""``python -m bench.cost.summary RUN_DIR``: the instruction verdicts that lead the summary of
``scripts/bench`` (one line per variant and endpoint at one client, vs ``context``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.common.result_files import CostFile
from bench.cost.compare import ENDPOINT_NOUN, within
from bench.cost.results import COST_FILE, load


def verdicts(doc: CostFile, baseline: str = "context") -> list[str]:
    """``depends: +10.8 % instructions per GET vs context (1 client, ±0.12 %)``, GET first."""
    order = list(ENDPOINT_NOUN)
    fewest = min(r.clients for r in doc.rows)
    changes = [c for c in within(doc, baseline) if c.clients == fewest]
    changes.sort(
        key=lambda c: (order.index(c.endpoint) if c.endpoint in order else 99, c.change_percent)
    )
    return [c.verdict() for c in changes]


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    if not (folder / COST_FILE).exists():
        print(f"no instruction counts in {folder} (no {COST_FILE})")
        return 0
    doc = load(folder)
    lines = verdicts(doc)
    print(f"Instructions per request (valgrind, server process only; {doc.status}):")
    for line in lines or ["(no variant measured beside context)"]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
