"""Which driver a server's connections really use, written where the runner can read it (opt-in).

Off unless ``SESSIONBENCH_DRIVER_EVIDENCE`` names a directory (the runner sets it): then the
first connection each process opens writes ``<dir>/<pid>.json`` with the class of the
driver's connection object (``asyncpg.connection.Connection``,
``psycopg.AsyncConnection``…), taken from the live connection, not from the settings. The
runner merges these into each cell's ``drivers_loaded`` (``bench.common.drivers``), so a
psycopg cell shows it ran on psycopg. ``variants`` must not import ``bench``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # raw records its asyncpg connections without importing SQLAlchemy
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

ENV = "SESSIONBENCH_DRIVER_EVIDENCE"
_written: set[str] = set()


def record(driver_connection: Any) -> None:
    """Write this process's evidence for *driver_connection* once per connection class."""
    directory = os.environ.get(ENV)
    kind = type(driver_connection)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if not directory or name in _written:
        return
    _written.add(name)
    path = Path(directory) / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"pid": os.getpid(), "connections": sorted(_written)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def watch(engine: AsyncEngine | Engine) -> None:
    """Record the driver connection of every connection *engine*'s pool opens (async or sync)."""
    from sqlalchemy import event

    event.listen(getattr(engine, "sync_engine", engine), "connect", _on_connect)


def _on_connect(dbapi_connection: Any, record_: Any) -> None:
    record(getattr(dbapi_connection, "driver_connection", dbapi_connection))
