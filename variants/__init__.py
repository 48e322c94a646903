"""The registry of variants: every runner, test, plot and report loops over ``VARIANTS``.

Adding a strategy is one new module exposing ``app`` plus one line below. A variant's
label is the first line of its module docstring. A ``library`` variant names the PyPI
package it shows (its version goes into run.json); one whose pins conflict with the main
environment names its own ``environment`` (``variants/envs/<name>.txt``, see
``bench.common.environments``) and is served, verified and benchmarked from that venv only.
"""

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["strategy", "baseline", "library", "calibration"]


@dataclass(frozen=True)
class Variant:
    name: str
    module: str
    kind: Kind
    library: str | None = None
    """The PyPI distribution a ``library`` variant shows."""
    environment: str | None = None
    """Its own environment (``variants/envs/<environment>.txt``); None: the main one."""
    orm: bool = True
    """Serves through an ORM session (one SELECT before each UPDATE/DELETE); False: Core/raw."""
    threads: bool = False
    """Sync handlers in FastAPI's threadpool on a sync engine: no asyncio pool queues."""
    commits_after_response: bool = False
    """Commits a request's writes after its response was sent: it breaks the contract's "a
    2xx write is committed before the response is sent" (a read right after may miss the
    write; a failing COMMIT was already answered 2xx). Every other rule still holds."""
    drivers: tuple[str, ...] = ("asyncpg", "psycopg")
    """The drivers it can run on (``variants.settings.DRIVERS``), its default first."""

    @property
    def driver(self) -> str:
        """The driver it runs on unless told otherwise."""
        return self.drivers[0]

    @property
    def app(self) -> str:
        """The import string uvicorn takes."""
        return f"{self.module}:app"

    @property
    def label(self) -> str:
        """First line of the module docstring, read without importing the module."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise LookupError(f"variant module {self.module} not found")
        doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or self.name
        return doc.splitlines()[0]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("scoped", "variants.scoped", "strategy"),
        Variant("depends", "variants.depends", "strategy"),
        Variant("context", "variants.context", "strategy"),
        Variant("scoped_task", "variants.scoped_task", "strategy"),
        Variant("scoped_basehttp", "variants.scoped_basehttp", "strategy"),
        Variant("depends_function", "variants.depends_function", "strategy"),
        Variant(
            "depends_commit", "variants.depends_commit", "strategy", commits_after_response=True
        ),
        Variant("depends_commit_function", "variants.depends_commit_function", "strategy"),
        Variant("core", "variants.core", "baseline", orm=False),
        Variant("raw", "variants.raw", "baseline", orm=False, drivers=("asyncpg",)),
        Variant(
            "sync_threadpool",
            "variants.sync_threadpool",
            "baseline",
            threads=True,
            drivers=("psycopg",),
        ),
        Variant(
            "fastapi_async_sqlalchemy",
            "variants.fastapi_async_sqlalchemy",
            "library",
            library="fastapi-async-sqlalchemy",
        ),
        Variant(
            "advanced_alchemy", "variants.advanced_alchemy", "library", library="advanced-alchemy"
        ),
        Variant(
            "fastapi_sqla",
            "variants.fastapi_sqla",
            "library",
            library="fastapi-sqla",
            environment="fastapi_sqla",
            drivers=("asyncpg",),
        ),
        Variant("sqlmodel", "variants.sqlmodel", "library", library="sqlmodel"),
        Variant("context_plus5", "variants.context_plus5", "calibration"),
        Variant("context_plus10", "variants.context_plus10", "calibration"),
    ]
}


def measured() -> list[str]:
    """Every variant but the calibration series (those join a run when asked for by name)."""
    return [name for name, v in VARIANTS.items() if v.kind != "calibration"]


def get(name: str) -> Variant:
    """The variant called *name*; KeyError names the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})") from None
