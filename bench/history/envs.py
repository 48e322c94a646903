"""The environment of a version set: a locked requirements file, then a cached venv.

``variants/envs/history-<set>.txt`` is generated once (``lock``): pip resolves what
``sessionbench serve`` imports (``SERVED``) with every package constrained to the version
installed in this (main) environment, except the set's package at its release. When that
release cannot have a baseline pin (FastAPI 0.105 needs starlette < 0.28), the pins of
``FREED[package]`` are lifted one by one, in order, until pip resolves; the file records
every version pip chose, so each step names what moved with the package. The venv is then
built and cached like fastapi_sqla's (``bench.common.environments.Environment``: rebuilt
only when the file or Python changes). Delete a file to lock it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from bench.common.environments import REQUIREMENTS_DIR, Environment, EnvironmentBuildError
from bench.history.sets import VersionSet, normalise

SERVED = (
    "fastapi", "sqlalchemy[asyncio]", "asyncpg", "uvicorn", "uvloop", "httptools", "httpx",
    "hdrhistogram", "prometheus-client", "psutil", "setuptools",
)  # fmt: skip
"""What the served variants and bench.cost.serve_hook import (as variants/envs/fastapi_sqla.txt)."""
FREED = {
    "fastapi": ("starlette", "anyio", "pydantic", "pydantic-core", "typing-extensions",
                "annotated-types", "typing-inspection", "annotated-doc"),
    "sqlalchemy": ("greenlet", "typing-extensions"),
}  # fmt: skip
"""Pins a release of the package may lift (in this order) when it cannot have main's."""
PREFIX = "history-"


def environment(s: VersionSet) -> Environment:
    return Environment(PREFIX + s.name)


def installed() -> dict[str, str]:
    """``{package: version}`` of this (main) environment: the baseline's pins."""
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}


def locked(s: VersionSet, requirements_dir: Path = REQUIREMENTS_DIR) -> dict[str, str]:
    """``{package: version}`` of *s*'s locked file ({} when not locked yet)."""
    path = requirements_dir / f"{PREFIX}{s.name}.txt"
    if not path.exists():
        return {}
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[normalise(name.split("[")[0])] = version.strip()
    return pins


def changed(s: VersionSet, baseline: dict[str, str]) -> dict[str, str]:
    """Every package whose version in *s* differs from *baseline* (new ones included)."""
    return {k: v for k, v in sorted(locked(s).items()) if baseline.get(k) != v}


def lock(s: VersionSet, requirements_dir: Path = REQUIREMENTS_DIR) -> Path:
    """Write *s*'s requirements file (see the module) unless it exists; its path."""
    path = requirements_dir / f"{PREFIX}{s.name}.txt"
    if path.exists():
        return path
    pins = installed()
    free: list[str] = [] if s.package is None else [normalise(s.package)]
    lifted: list[str] = []
    candidates = list(FREED.get(s.package or "", ()))
    while True:
        chosen, error = _resolve(s, {k: v for k, v in pins.items() if k not in free})
        if chosen is not None:
            break
        if not candidates:
            raise EnvironmentBuildError(f"history {s.name}: pip cannot resolve it: {error}")
        lifted.append(candidates.pop(0))
        free.append(lifted[-1])
    what = "main's pins" if s.package is None else f"{s.package} {s.version} over main's pins"
    header = [
        f"# sessionbench history: the environment of {s.name} ({what}), locked by",
        "# bench/history/envs.py from what `serve` imports; delete this file to lock it again.",
        f"# Pins lifted for pip to resolve: {', '.join(lifted) or 'none'}.",
    ]
    path.write_text("\n".join([*header, *(f"{k}=={v}" for k, v in sorted(chosen.items()))]) + "\n")
    return path


def _resolve(s: VersionSet, constraints: dict[str, str]) -> tuple[dict[str, str] | None, str]:
    """What pip would install for ``SERVED`` under *constraints* (None and pip's error if
    it cannot)."""
    wanted = [*SERVED]
    if s.package is not None:
        wanted = [w for w in wanted if normalise(w.split("[")[0]) != s.package]
        extra = "[asyncio]" if s.package == "sqlalchemy" else ""
        wanted.append(f"{s.package}{extra}=={s.version}")
    with tempfile.TemporaryDirectory(prefix="sessionbench-lock-") as tmp:
        req, con, report = Path(tmp, "req.txt"), Path(tmp, "con.txt"), Path(tmp, "report.json")
        req.write_text("\n".join(wanted) + "\n")
        con.write_text("\n".join(f"{k}=={v}" for k, v in constraints.items()) + "\n")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--quiet", "--disable-pip-version-check", "--report", str(report),
             "-r", str(req), "-c", str(con)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            lines = [x for x in (result.stderr or result.stdout).splitlines() if x.strip()]
            errors = [x for x in lines if x.startswith("ERROR:")]
            return None, (errors or lines or ["no output"])[-1]
        items = json.loads(report.read_text())["install"]
    return {normalise(i["metadata"]["name"]): i["metadata"]["version"] for i in items}, ""
