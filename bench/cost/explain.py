"""Why variant A executes more (or fewer) instructions per request than B: their profiles
(``bench.cost.profile``) differenced by group, package and function.

The groups' self-instruction differences add up to the difference of the two profiles'
means exactly (every instruction is some function's self cost; ``callgrind residue`` holds
what a dump's summary counts beyond its function lines), and that lies within the two
cost.json rows' spreads of their measured (median) difference: ``Explanation.adds_up``.
Inclusive differences are shown per function, never added (a caller's includes its callees').
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.common.result_files import CostRow
from bench.cost import profile
from bench.cost.packages import package_of
from bench.cost.profile import Profile
from bench.cost.results import load

TOP_FUNCTIONS = 12


@dataclass(frozen=True)
class Part:
    """One group's (or package's) self instructions per request in A and B."""

    name: str
    a: float
    b: float

    @property
    def diff(self) -> float:
        return self.a - self.b


@dataclass(frozen=True)
class FunctionDiff:
    """One function's self and inclusive instructions per request in A and B (None: below
    that profile's cut-off, ``Profile.cutoff``)."""

    name: str
    object: str
    group: str
    self_a: float | None
    self_b: float | None
    inclusive_a: float | None
    inclusive_b: float | None

    @property
    def self_diff(self) -> float:
        return (self.self_a or 0.0) - (self.self_b or 0.0)

    @property
    def inclusive_diff(self) -> float:
        return (self.inclusive_a or 0.0) - (self.inclusive_b or 0.0)


@dataclass(frozen=True)
class Explanation:
    a: str
    b: str
    endpoint: str
    clients: int
    measured_a: float
    """cost.json's median instructions per request of A."""
    measured_b: float
    spread: float
    """The two rows' (max − min) ranges added, in instructions per request."""
    groups: list[Part]
    functions: list[FunctionDiff]
    """By inclusive difference, without the frames that hold over half of every request."""
    by_self: list[FunctionDiff]
    """By self difference."""

    @property
    def measured_diff(self) -> float:
        return self.measured_a - self.measured_b

    @property
    def grouped_diff(self) -> float:
        return sum(g.diff for g in self.groups)

    def adds_up(self) -> bool:
        return abs(self.grouped_diff - self.measured_diff) <= self.spread

    @property
    def packages(self) -> list[Part]:
        """The groups rolled up per package (the interpreter's groups into one), by |diff|."""
        sums: dict[str, list[float]] = {}
        for g in self.groups:
            pair = sums.setdefault(package_of(g.name), [0.0, 0.0])
            pair[0] += g.a
            pair[1] += g.b
        parts = [Part(name, a, b) for name, (a, b) in sums.items()]
        return sorted(parts, key=lambda p: (-abs(p.diff), p.name))

    def percent(self, value: float) -> float:
        """*value* as a percentage of B's instructions per request."""
        return 100 * value / self.measured_b


def compare_profiles(pa: Profile, pb: Profile, row_a: CostRow, row_b: CostRow) -> Explanation:
    names = set(pa.groups) | set(pb.groups)
    groups = sorted(
        (Part(n, pa.groups.get(n, 0.0), pb.groups.get(n, 0.0)) for n in names),
        key=lambda g: (-abs(g.diff), g.name),  # ties by name: the same order every time
    )
    fa, fb = pa.function_index(), pb.function_index()
    functions = []
    for key in fa.keys() | fb.keys():
        ga, gb = fa.get(key), fb.get(key)
        group = (ga or gb or ("", 0.0, 0.0))[0]
        functions.append(
            FunctionDiff(
                key[0],
                key[1],
                group,
                ga[1] if ga else None,
                gb[1] if gb else None,
                ga[2] if ga else None,
                gb[2] if gb else None,
            )
        )
    # frames that hold most of every request (the event loop, a task's step, the eval
    # loop) include the whole difference and say nothing about where it is
    whole = 0.5 * min(pa.instructions_per_request, pb.instructions_per_request)
    by_self = sorted(functions, key=lambda f: (-abs(f.self_diff), f.name, f.object))[:TOP_FUNCTIONS]
    functions = [f for f in functions if max(f.inclusive_a or 0, f.inclusive_b or 0) < whole]
    functions.sort(key=lambda f: (-abs(f.inclusive_diff), f.name, f.object))
    spread = sum(r.instructions_per_request * r.spread_percent / 100 for r in (row_a, row_b))
    return Explanation(
        a=pa.variant,
        b=pb.variant,
        endpoint=pa.endpoint,
        clients=pa.clients,
        measured_a=row_a.instructions_per_request,
        measured_b=row_b.instructions_per_request,
        spread=spread,
        groups=groups,
        functions=functions[:TOP_FUNCTIONS],
        by_self=by_self,
    )


def explain(folder: Path, a: str, b: str, endpoint: str, clients: int = 1) -> Explanation | None:
    """A vs B at (*endpoint*, *clients*) in the run *folder* (None: a row or profile missing)."""
    rows = load(folder).row_index()
    row_a, row_b = rows.get((a, endpoint, clients)), rows.get((b, endpoint, clients))
    pa, pb = (profile.load(folder, v, endpoint, clients) for v in (a, b))
    if row_a is None or row_b is None or pa is None or pb is None:
        return None
    return compare_profiles(pa, pb, row_a, row_b)


def explainable(folder: Path, clients: int = 1) -> list[tuple[str, str]]:
    """(variant, endpoint) pairs of *folder* that have a profile at *clients*."""
    found = []
    for path in sorted((folder / profile.PROFILES_DIR).glob(f"*-c{clients}.json")):
        variant, _, endpoint = path.name.removesuffix(f"-c{clients}.json").rpartition("-")
        found.append((variant, endpoint))
    return found
