"""What a variant declares: ``Variant`` (one registry entry) and ``Micro`` (its micro operations).

A declaration is data, read without importing the variant's module: that import builds the
app on the shared engine, which needs ``DATABASE_URL``, and the command line, the runners and
the registry run long before any database exists. The code a declaration names lives in the
variant's module and is imported only by the processes that run it.
"""

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

Kind = Literal["strategy", "baseline", "library", "calibration"]
KINDS: tuple[str, ...] = get_args(Kind)

SESSION_OPERATION = "micro_session"
"""The module attribute of a variant's session operation (``Micro.session``)."""
MACHINERY_APP = "micro_app"
"""The module attribute that builds a variant's machinery apps (``Micro.machinery``)."""


@dataclass(frozen=True)
class Micro:
    """What ``sessionbench micro`` times and ``sessionbench cost`` counts of a variant.

    The code is in the variant's module (``variants.micro`` has helpers for the usual shapes);
    a variant that declares nothing has no rows there, and ``cost`` says so in its
    ``operations_skipped``.
    """

    session: bool = False
    """``async def micro_session(use)`` opens a session as the variant's requests do, awaits
    ``use(session)`` and ends it (groups ``session-lifecycle``, ``-select1``, ``-get``); its
    docstring is the row's label."""
    machinery: tuple[str, ...] = ()
    """Operation names of group ``machinery``: ``micro_app(name)`` builds, for each, an app
    whose ``GET /op`` does nothing but the variant's per-request work (middleware, dependency,
    ``async with``). One ASGI call of it is the operation."""


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
    micro: Micro = Micro()
    """Its micro-benchmark operations (none by default)."""

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
        doc = ast.get_docstring(self._source()) or self.name
        return doc.splitlines()[0]

    def doc_of(self, function: str) -> str | None:
        """The docstring of the module's top-level *function*, read without importing it."""
        for node in self._source().body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
                return ast.get_docstring(node)
        return None

    def _source(self) -> ast.Module:
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise LookupError(f"variant module {self.module} not found")
        return ast.parse(Path(spec.origin).read_text())
