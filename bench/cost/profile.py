"""``profiles/VARIANT-ENDPOINT-cN.json``: where one cost row's instructions went, per request.

Written by ``sessionbench cost`` from the repeats' callgrind dumps before they are deleted
(schema ``sessionbench.cost-profile/1``). Small enough to commit (a few KB): every group's
self instructions (``bench.cost.packages``; complete, they add up to the row's instructions
per request), and the functions that are in the top ``KEEP`` by self or by inclusive
instructions, each as ``[function, object, group, self, inclusive]`` per request. A function
absent from a file is below both of its ``cutoff`` values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bench.common import result_files, run_folder
from bench.cost.callgrind import Dump
from bench.cost.packages import group_of, short_object

SCHEMA = "sessionbench.cost-profile/1"
PROFILES_DIR = run_folder.PROFILES
KEEP = 30
"""Functions kept per file by self and by inclusive instructions (the union is stored)."""
RESIDUE = "callgrind residue"
"""Group of the dumps' ``summary`` − ``totals``: zero in a clean dump (see ``valgrind.zero``)."""


class Profile(BaseModel):
    """One (variant, endpoint, clients) row's instructions per request, by group and function."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    _check = result_files.schema_family("sessionbench.cost-profile")

    schema_: str = Field(SCHEMA, alias="schema")
    variant: str
    endpoint: str
    clients: int
    requests: int
    """Requests per repeat."""
    repeats: int
    instructions_per_request: float
    """Mean of the repeats (cost.json's row holds their median)."""
    groups: dict[str, float]
    functions: list[tuple[str, str, str, float, float]]
    cutoff: tuple[float, float]
    """(self, inclusive) of the smallest kept: a function absent is below both."""

    def function_index(self) -> dict[tuple[str, str], tuple[str, float, float]]:
        """(function, object) → (group, self, inclusive)."""
        return {(f, o): (g, s, i) for f, o, g, s, i in self.functions}


def file_name(variant: str, endpoint: str, clients: int) -> str:
    return f"{variant}-{endpoint}-c{clients}.json"


def from_dumps(
    dumps: list[Dump], *, variant: str, endpoint: str, clients: int, requests: int
) -> Profile:
    """The mean per request of *dumps* (each of *requests* requests)."""
    n = len(dumps) * requests
    groups: dict[str, float] = defaultdict(float)
    self_of: dict[tuple[str, str], float] = defaultdict(float)
    inclusive_of: dict[tuple[str, str], float] = defaultdict(float)
    group_by: dict[tuple[str, str], str] = {}
    for dump in dumps:
        groups[RESIDUE] += (dump.summary - dump.totals) / n
        for function in dump.functions.values():
            key = (function.name, short_object(function.object))
            group = group_by.setdefault(key, group_of(function.object, function.file))
            groups[group] += function.self / n
            self_of[key] += function.self / n
            inclusive_of[key] += function.inclusive / n
    by_self = sorted(self_of, key=lambda k: -self_of[k])[:KEEP]
    by_inclusive = sorted(inclusive_of, key=lambda k: -inclusive_of[k])[:KEEP]
    kept = sorted(set(by_self) | set(by_inclusive), key=lambda k: -inclusive_of[k])
    return Profile(
        schema=SCHEMA,
        variant=variant,
        endpoint=endpoint,
        clients=clients,
        requests=requests,
        repeats=len(dumps),
        instructions_per_request=round(sum(d.summary for d in dumps) / n, 1),
        groups={g: round(v, 1) for g, v in sorted(groups.items(), key=lambda x: -x[1])},
        functions=[
            (
                name,
                obj,
                group_by[(name, obj)],
                round(self_of[(name, obj)]),
                round(inclusive_of[(name, obj)]),
            )
            for name, obj in kept
        ],
        cutoff=(
            float(round(self_of[by_self[-1]])) if by_self else 0.0,
            float(round(inclusive_of[by_inclusive[-1]])) if by_inclusive else 0.0,
        ),
    )


def save(profile: Profile, folder: Path) -> Path:
    """Write *profile* under *folder*/profiles, one function per line (small diffs)."""
    path = folder / PROFILES_DIR / file_name(profile.variant, profile.endpoint, profile.clients)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = profile.model_dump(by_alias=True)
    functions = doc.pop("functions")
    head = json.dumps(doc)
    rows = ",\n".join("  " + json.dumps(list(f)) for f in functions)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f'{head[:-1]}, "functions": [\n{rows}\n]}}\n')
    tmp.replace(path)
    return path


def load(folder: Path, variant: str, endpoint: str, clients: int) -> Profile | None:
    """The profile of that row in the run *folder* (None when it has none)."""
    path = folder / PROFILES_DIR / file_name(variant, endpoint, clients)
    if not path.exists():
        return None
    return result_files.load(path, Profile)
