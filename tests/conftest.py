"""Shared fixtures: one real PostgreSQL per test session, and variant servers started on demand.

PostgreSQL is the embedded server (or ``DATABASE_URL`` when set); variants run as real
``sessionbench serve`` processes, exactly as the benchmarks run them.
"""

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.common import database
from bench.common.server import VariantServer
from variants.settings import DatabaseUrl


@pytest.fixture(scope="session")
def db() -> Iterator[DatabaseUrl]:
    with database.database_url_or_embedded() as (url, _):
        asyncio.run(database.ensure_schema(url))
        # Variant modules read DATABASE_URL on import; tests that import them need it set.
        previous = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = url.url
        yield url
        if previous is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = previous


@pytest.fixture(scope="session")
def serve(
    db: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], VariantServer]]:
    """Start (once per session) and return the server of a variant."""
    servers: dict[str, VariantServer] = {}
    logs = tmp_path_factory.mktemp("server-logs")

    def get(name: str) -> VariantServer:
        if name not in servers:
            server = VariantServer(name, db, log_path=Path(logs) / f"{name}.log")
            server.start()
            servers[name] = server
        return servers[name]

    yield get
    for server in servers.values():
        server.stop()
