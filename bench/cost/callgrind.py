"""A callgrind dump read per function: self and inclusive instructions, object file, source file.

The format (valgrind's "Callgrind Format Specification"): ``ob=``/``fl=``/``fn=`` set the
current object, file and function; ``cob=``/``cfi=``/``cfn=`` name a call's target, and the
line after ``calls=COUNT TARGET`` is that call's *inclusive* cost; any other cost line
(``POSITION COST``, positions possibly relative: ``+3``, ``-1``, ``*``) is self cost of the
current function. Names are compressed: the first use is ``(ID) name``, later ones ``(ID)``;
``ob``/``cob`` share one table, ``fl``/``fi``/``fe``/``cfi``/``cfl`` another, ``fn``/``cfn``
a third. ``fi``/``fe`` (inlined code) change the file of cost lines, not the function.

Recursion: with callgrind's default ``--separate-recs=2`` an activation of ``f`` inside
another ``f`` is recorded as ``f'2``. A function's self cost here is its levels added up;
its inclusive cost is the outermost level's (self + every call it makes), which counts all
work under an outermost activation exactly once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_TABLE = {
    "ob": "ob", "cob": "ob",
    "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl",
    "fn": "fn", "cfn": "fn",
}  # fmt: skip
_LEVEL = re.compile(r"'\d+$")


@dataclass
class Function:
    """One function of a dump (its recursion levels merged)."""

    name: str
    object: str
    file: str
    self: int = 0
    inclusive: int = 0


@dataclass
class Dump:
    summary: int
    """``summary:``: instructions since the counters were zeroed (what cost.json counts)."""
    totals: int
    """Self costs added up (callgrind's ``totals:``); equals ``summary`` in a clean dump."""
    trigger: str = ""
    functions: dict[tuple[str, str], Function] = field(default_factory=dict)
    """By (object, name)."""


def _resolve(table: dict[str, str], value: str) -> str:
    """``(ID) name`` defines and returns *name*; ``(ID)`` looks it up; a plain name is itself."""
    if not value.startswith("("):
        return value
    ident, _, name = value.partition(")")
    name = name.strip()
    if name:
        table[ident] = name
        return name
    return table.get(ident, f"?{ident[1:]}")


def parse(path: Path) -> Dump:
    """Every function of the dump at *path* with its self and inclusive instructions."""
    tables: dict[str, dict[str, str]] = {"ob": {}, "fl": {}, "fn": {}}
    self_cost: dict[tuple[str, str], int] = defaultdict(int)
    call_cost: dict[tuple[str, str], int] = defaultdict(int)
    file_of: dict[tuple[str, str], str] = {}
    ob = fl = fn = ""
    cob = cfn = ""
    after_calls = False
    summary = totals = 0
    trigger = ""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            first = line[:1]
            if first.isdigit() or first in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if after_calls:
                    after_calls = False
                    # direct recursion at the same level would count its cost twice
                    if (cob or ob, cfn) != (ob, fn):
                        call_cost[(ob, fn)] += cost
                else:
                    self_cost[(ob, fn)] += cost
                continue
            key, sep, value = line.rstrip("\n").partition("=")
            if not sep:
                if line.startswith("summary:"):
                    summary = int(line.split()[1])
                elif line.startswith("totals:"):
                    totals = int(line.split()[1])
                elif line.startswith("desc: Trigger:"):
                    trigger = line.partition("Trigger:")[2].strip()
                continue
            if key == "calls":
                after_calls = True
                continue
            table = _TABLE.get(key)
            if table is None:
                continue
            name = _resolve(tables[table], value)
            if key == "ob":
                ob, cob = name, ""
            elif key == "cob":
                cob = name
            elif key == "fl":
                fl = name
            elif key == "fn":
                fn, cob = name, ""
                file_of.setdefault((ob, fn), fl)
            elif key == "cfn":
                cfn = name
    if not summary and not self_cost:
        raise ValueError(f"{path}: no summary line and no costs (not a callgrind dump?)")
    functions: dict[tuple[str, str], Function] = {}
    for ident in self_cost.keys() | call_cost.keys():
        obj, name = ident
        base = _LEVEL.sub("", name)
        entry = functions.get((obj, base))
        if entry is None:
            entry = functions[(obj, base)] = Function(
                base, obj, file_of.get((obj, base), file_of.get(ident, ""))
            )
        entry.self += self_cost.get(ident, 0)
        if name == base:
            entry.inclusive += self_cost.get(ident, 0) + call_cost.get(ident, 0)
    return Dump(summary, totals or sum(self_cost.values()), trigger, functions)
