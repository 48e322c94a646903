"""The ``--driver`` axis: which drivers exist, which variant runs on which, and the evidence.

The drivers are ``variants.settings.DRIVERS`` (asyncpg, psycopg); a server reads its own from
``SESSIONBENCH_DRIVER`` (``Settings.driver``). Which variant can run on which is data on the
registry (``Variant.drivers``, its default first): ``raw`` is asyncpg only (the driver
ceiling), ``fastapi_sqla`` too (its own environment pins asyncpg). ``select`` turns the flags
into (variant, driver) pairs; ``collect`` reads what the servers wrote about the driver
connections they really opened (``variants/driver_evidence.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import variants
from variants.driver_evidence import ENV as EVIDENCE_ENV
from variants.settings import DRIVER_ENV, DRIVERS, PSYCOPG_PREPARE_THRESHOLD

__all__ = ["DRIVERS", "DRIVER_ENV", "EVIDENCE_ENV", "DriverError", "collect", "select"]

DIFFERENCES: dict[str, dict[str, Any]] = {
    "asyncpg": {
        "dbapi": "asyncpg through SQLAlchemy's asyncpg adapter",
        "prepared_statements": "every statement, cached per connection "
        "(SQLAlchemy's prepared_statement_cache_size 100)",
        "result_format": "binary",
        "connect_args": "server_settings.application_name",
    },
    "psycopg": {
        "dbapi": "psycopg 3 AsyncConnection",
        "prepared_statements": f"prepare_threshold={PSYCOPG_PREPARE_THRESHOLD} (every statement "
        "prepared on first use; psycopg's default is 5), prepared_max 100 per connection",
        "result_format": "text (psycopg's default)",
        "connect_args": "application_name",
    },
}
"""What differs between the drivers once the pool is made equal (recorded in run.json):
both run under the same SQLAlchemy pool class and queue, size, overflow and timeout."""


class DriverError(ValueError):
    """A variant named on the command line cannot run on any driver asked for."""


def supported(variant: str) -> tuple[str, ...]:
    """The drivers *variant* runs on (a name outside the registry: any)."""
    known = variants.VARIANTS.get(variant)
    return known.drivers if known else DRIVERS


def default(variant: str) -> str:
    return supported(variant)[0]


def select(
    names: list[str], drivers: list[str] | None, *, named: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """(variant, driver) pairs to run and one-line notes of what was left out.

    *drivers* None: every variant on its default driver. *named*: the variants came from
    ``--variants`` (a variant that can run on none of *drivers* is an error), otherwise from a
    preset (it is left out with a note).
    """
    if drivers is None:
        return [(name, default(name)) for name in names], []
    pairs, notes = [], []
    for name in names:
        can = [d for d in drivers if d in supported(name)]
        if not can:
            if named:
                raise DriverError(
                    f"--driver {','.join(drivers)}: variant {name} runs on "
                    f"{', '.join(supported(name))} only"
                )
            notes.append(
                f"{name} left out: it runs on {', '.join(supported(name))} only "
                f"(--driver {','.join(drivers)})"
            )
            continue
        if len(can) < len(drivers):
            notes.append(f"{name} runs on {', '.join(can)} only")
        pairs += [(name, d) for d in can]
    return pairs, notes


def only(names: list[str], driver: str | None, *, named: bool) -> tuple[list[str], list[str]]:
    """For commands that take one ``--driver``: the variants to run, and notes of those left out."""
    pairs, notes = select(names, None if driver is None else [driver], named=named)
    return [name for name, _ in pairs], notes


def server_env(variant: str, driver: str | None) -> dict[str, str]:
    """The environment that puts *variant*'s server on *driver* (None: its default)."""
    return {DRIVER_ENV: driver or default(variant)}


def settings(drivers: list[str]) -> dict[str, Any]:
    """What run.json records about the drivers used: the settings that differ between them."""
    return {d: DIFFERENCES[d] for d in drivers}


def collect(directory: Path) -> dict[str, Any]:
    """The cell's evidence: driver connection classes the server's processes really opened."""
    classes: set[str] = set()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            classes |= set(json.loads(path.read_text())["connections"])
        except (OSError, ValueError, KeyError):
            continue
    return {
        "drivers_loaded": sorted({c.split(".", 1)[0] for c in classes}),
        "driver_connections": sorted(classes),
    }


def mismatch(driver: str, evidence: dict[str, Any]) -> str | None:
    """Why *evidence* shows the server did not run on *driver* (None: it did)."""
    loaded = evidence.get("drivers_loaded") or []
    if loaded == [driver]:
        return None
    seen = ", ".join(evidence.get("driver_connections") or []) or "no connection recorded"
    return f"driver: the series runs on {driver} but the server's connections were: {seen}"
