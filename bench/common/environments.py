"""Per-variant environments: a variant whose pins conflict with the main ones runs in its own venv.

Each variant is already its own server process, so a variant that declares an
``environment`` (``Variant.environment = "fastapi_sqla"``) is simply started with another
interpreter: ``.venvs/<name>/bin/python``, built on first use from the fully pinned
``variants/envs/<name>.txt`` (``python -m venv``, ``pip install -r``, then this repository
with ``--no-deps -e`` so ``bench`` and ``variants`` import). A stamp holds the hash of the
requirements file and of the Python version; when either changes, the venv is rebuilt.
Every other variant runs on ``sys.executable``, the main environment. ``sessionbench
serve`` of such a variant re-executes itself on that interpreter.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from variants import Variant

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS_DIR = ROOT / "variants" / "envs"
VENVS_DIR = ROOT / ".venvs"
STAMP = ".sessionbench-stamp"
PIP_TIMEOUT = 900.0
VERSIONS_OF = ("fastapi", "starlette", "pydantic", "sqlalchemy", "asyncpg", "psycopg", "uvicorn")
"""Packages whose versions every variant records (plus its ``library``)."""


class EnvironmentBuildError(RuntimeError):
    """A variant's environment could not be built; the message is one line saying why."""


@dataclass(frozen=True)
class Environment:
    """The venv ``<venvs>/<name>`` built from ``<requirements_dir>/<name>.txt``."""

    name: str
    requirements_dir: Path = REQUIREMENTS_DIR
    venvs_dir: Path = VENVS_DIR

    @property
    def requirements(self) -> Path:
        return self.requirements_dir / f"{self.name}.txt"

    @property
    def path(self) -> Path:
        return self.venvs_dir / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def digest(self) -> str:
        """What the venv is built from: the requirements file and this Python's version."""
        try:
            content = self.requirements.read_bytes()
        except OSError as exc:
            raise EnvironmentBuildError(
                f"environment {self.name}: cannot read {self.requirements}: {exc.strerror}"
            ) from None
        return hashlib.sha256(content + sys.version.encode()).hexdigest()

    def current(self) -> bool:
        """The venv exists and was built from the present requirements file."""
        stamp = self.path / STAMP
        return (
            self.python.exists() and stamp.exists() and stamp.read_text().strip() == self.digest()
        )

    def ensure(self) -> Path:
        """The venv's interpreter, building (or rebuilding) the venv first when it is stale."""
        if self.current():
            return self.python
        with self._lock():
            if not self.current():  # another process may have built it meanwhile
                self.build()
        return self.python

    def build(self) -> None:
        """Create the venv from scratch; on failure leave no stamp and raise a one-line error."""
        digest = self.digest()
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        print(
            f"sessionbench: building the environment of {self.name} in {where} "
            f"(once, or after {self.requirements.name} changed; about 15 s)",
            file=sys.stderr,
            flush=True,
        )
        shutil.rmtree(self.path, ignore_errors=True)
        pip = [str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        self._step("create the venv", [sys.executable, "-m", "venv", str(self.path)])
        self._step(f"install {self.requirements.name}", [*pip, "-r", str(self.requirements)])
        self._step("install this repository", [*pip, "--no-deps", "-e", str(ROOT)])
        (self.path / STAMP).write_text(digest + "\n")
        print(f"sessionbench: environment of {self.name} ready", file=sys.stderr, flush=True)

    def _step(self, what: str, cmd: list[str]) -> None:
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentBuildError(f"environment {self.name}: cannot {what}: {exc}") from None
        if result.returncode != 0:
            raise EnvironmentBuildError(
                f"environment {self.name}: cannot {what} (network or registry down, or a bad "
                f"pin in {self.requirements}?): {_last_error(result.stderr or result.stdout)}"
            )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.venvs_dir.mkdir(parents=True, exist_ok=True)
        with (self.venvs_dir / f"{self.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _last_error(output: str) -> str:
    """The most telling line of pip's output: its last ``ERROR:`` line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1]


_ALL_ON: list[Path] = []
"""The interpreter every variant is served on within ``all_on`` (empty: each its own)."""


@contextlib.contextmanager
def all_on(python: Path) -> Iterator[None]:
    """Serve every variant on *python* for the block (``sessionbench history``: one version
    set's venv; the servers, ``package_versions`` and the contract check all follow)."""
    _ALL_ON.append(python)
    try:
        yield
    finally:
        _ALL_ON.pop()


def interpreter(variant: Variant) -> str:
    """The Python that serves *variant*: its own environment's (built if needed) or this one."""
    if _ALL_ON:
        return str(_ALL_ON[-1])
    if variant.environment is None:
        return sys.executable
    return str(Environment(variant.environment).ensure())


def exec_in_own_environment(variant: Variant) -> None:
    """Re-run this command on *variant*'s own interpreter unless it is this one (``serve``)."""
    if variant.environment is None:
        return
    env = Environment(variant.environment)
    if Path(sys.prefix).resolve() == env.path.resolve():
        return
    try:
        python = str(env.ensure())
    except EnvironmentBuildError as exc:
        raise SystemExit(f"sessionbench: error: {exc}") from None
    os.execv(python, [python, "-m", "bench.cli", *sys.argv[1:]])


_VERSIONS_SCRIPT = """
import json, sys
from importlib import metadata
versions = {}
for name in sys.argv[1:]:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
print(json.dumps(versions))
"""


def package_versions(variant: Variant) -> dict[str, str | None]:
    """``{package: version}`` as installed for *variant*'s interpreter (None: not installed)."""
    names = [*VERSIONS_OF, *([variant.library] if variant.library else [])]
    result = subprocess.run(
        [interpreter(variant), "-c", _VERSIONS_SCRIPT, *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    versions: dict[str, str | None] = json.loads(result.stdout)
    return versions


_TOKENS_SCRIPT = """
import anyio, anyio.to_thread
async def tokens():
    return anyio.to_thread.current_default_thread_limiter().total_tokens
print(int(anyio.run(tokens)))
"""


def threadpool_tokens(variant: Variant) -> int:
    """The total tokens of anyio's default thread limiter in *variant*'s interpreter.

    FastAPI runs ``def`` endpoints (and sync dependencies) in anyio's threadpool under this
    limiter; no variant changes it, so a fresh event loop there reads what the server has.
    """
    result = subprocess.run(
        [interpreter(variant), "-c", _TOKENS_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)
