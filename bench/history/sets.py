"""The version sets of a history: the baseline (main's pins) and one set per release of one
package, every other package at the baseline's pin.

A set is named ``<package>-<version>`` (the baseline: ``baseline``). Its series is the
package it varies: the sets of one package and the baseline, ordered by that package's
version, are the line a step is found on (``bench.history.steps``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = "baseline"
VARIED = ("fastapi", "sqlalchemy")
"""The packages a history varies, in the order its series are shown."""

FASTAPI = (
    "0.100.1",  # the first 0.100 (pydantic 2); it cannot run on main's pydantic: recorded so
    "0.103.2",
    "0.105.0",  # the last before #10831 moved yield dependencies' exit before the response
    "0.106.0",
    "0.117.1",  # the last before #14099 moved it back after the response
    "0.118.0",
    "0.120.4",  # the last before Depends(scope=...) (#14262)
    "0.121.0",
    "0.141.1",
    "0.165.0",  # the newest in the registry (main pins 0.163.2: the baseline)
)
SQLALCHEMY = ("2.0.58",)
"""The newest 2.0 (main pins 2.1.9: the baseline)."""
DEFAULT_VARIANTS = ("context", "depends", "depends_function", "scoped")
DEFAULT_ENDPOINTS = ("get", "write")


@dataclass(frozen=True)
class VersionSet:
    """One environment: *package* at *version* over the baseline (both None: the baseline)."""

    package: str | None = None
    version: str | None = None

    @property
    def name(self) -> str:
        return BASELINE if self.package is None else f"{self.package}-{self.version}"

    @classmethod
    def parse(cls, name: str) -> VersionSet:
        if name == BASELINE:
            return cls()
        package, _, version = name.partition("-")
        return cls(package, version)


def main_pins(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``{package: version}`` of pyproject.toml's ``name==version`` dependencies (extras and
    case dropped: the names pip reports)."""
    pins = {}
    for name, version in re.findall(
        r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^"]+)"', pyproject.read_text()
    ):
        pins[normalise(name)] = version
    return pins


def normalise(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def default_sets(
    fastapi: tuple[str, ...] = FASTAPI, sqlalchemy: tuple[str, ...] = SQLALCHEMY
) -> list[VersionSet]:
    """The baseline, then each package's releases (a release equal to main's pin is the
    baseline and left out), in measuring order: SQLAlchemy's short series first."""
    pins = main_pins()
    sets = [VersionSet()]
    for package, versions in (("sqlalchemy", sqlalchemy), ("fastapi", fastapi)):
        sets += [VersionSet(package, v) for v in versions if v != pins.get(package)]
    return sets


def version_key(version: str) -> tuple[int, ...]:
    """``0.118.0`` → (0, 118, 0): releases of these packages are plain dotted numbers."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def series(sets: list[VersionSet], package: str, pins: dict[str, str]) -> list[VersionSet]:
    """The sets of *package* and the baseline (at main's pin), by *package*'s version."""
    members = [s for s in sets if s.package == package]
    if any(s.package is None for s in sets):
        members.append(VersionSet())

    def key(s: VersionSet) -> tuple[int, ...]:
        return version_key(s.version if s.version is not None else pins[package])

    return sorted(members, key=key)


def version_of(s: VersionSet, package: str, pins: dict[str, str]) -> str:
    """*package*'s version in set *s*."""
    return s.version if s.package == package and s.version else pins[package]
