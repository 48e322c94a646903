"""One colour and marker per variant name, the same in every figure and every run.

The suite's own variants have theirs fixed here, by name: a variant added to the registry
(or a registry reordered) recolours nobody. Any other name (a new variant not listed yet, a
user's own through ``--variant``) gets a combination none of these use, picked by a stable
hash of the name: the same in every process and every run (two such names can share one).
"""

from __future__ import annotations

import zlib

PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f", "#000000",
    "#e377c2", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#7b4173", "#d6a100",
    "#5254a3", "#8ca252", "#bd9e39", "#e7969c",
]  # fmt: skip
MARKERS = ["o", "s", "^", "D", "v", "P", "*", "<", ">", "h", "p", "d"]
"""With the colour, a marker per variant, so no two variants look alike even in grey
(``x`` is reserved for invalid trials)."""

FIXED_ORDER = [
    "scoped", "depends", "context", "scoped_task", "scoped_basehttp", "depends_function",
    "depends_commit", "depends_commit_function", "core", "raw", "sync_threadpool",
    "fastapi_async_sqlalchemy", "advanced_alchemy", "fastapi_sqla", "sqlmodel",
    "context_plus5", "context_plus10",
]  # fmt: skip
"""The built-in variants, each given the i-th colour and marker (the registry's order when
colours were fixed; append a new built-in variant here to give it the next pair)."""
FIXED: dict[str, tuple[str, str]] = {
    name: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
    for i, name in enumerate(FIXED_ORDER)
}
_FREE = [
    (c, m) for c in PALETTE for m in MARKERS if (c, m) not in set(FIXED.values())
]  # fmt: skip


def style(variant: str) -> tuple[str, str]:
    """(colour, marker) of *variant*: fixed for the built-in ones, else a hash of the name."""
    return FIXED.get(variant) or _FREE[zlib.crc32(variant.encode()) % len(_FREE)]
