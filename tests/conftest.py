"""Shared fixtures: one real PostgreSQL per test session, and variant servers started on demand.

PostgreSQL is the embedded server (or ``DATABASE_URL`` when set); variants run as real
``sessionbench serve`` processes, exactly as the benchmarks run them.

``scripts/test`` runs the suite on two pytest-xdist workers (``--dist loadgroup``). Each
worker is its own test session: its own embedded PostgreSQL (a unix socket in its own temp
folder), its own servers on free ports. ``GROUPS`` keeps together what must not be split
or must not run beside itself: see its comment.
"""

import asyncio
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.common import database
from bench.common.server import VariantServer
from variants.settings import DatabaseUrl

GROUPS: dict[str, str] = {
    # Timing and CPU measurements, valgrind's instruction counts, the pitfall matrix's timed
    # scenarios and the micro-benchmarks: one after the other, never beside each other.
    "tests/test_cpu.py::": "timing",
    "tests/test_cost.py::": "timing",
    "tests/test_micro.py::": "timing",
    "tests/test_pitfalls.py::": "timing",
    "tests/test_pool.py::test_repro_": "timing",
    "tests/test_runner.py::test_a_starving_strategy": "timing",
    # Module-scoped fixtures built once (a load run, a report, a server).
    "tests/test_report.py::": "report",
    "tests/test_report_browser.py::": "report-browser",
    "tests/test_lab.py::": "lab",
    # The micro-benchmarks' own session PostgreSQL and event loop: one worker starts them.
    "bench/micro/": "micro",
}
"""nodeid prefix → group: the tests of a group run on one worker, one after the other.

Every check of one variant in ``test_contract.py`` is a group too (its server starts once);
every other test is a group of its own. pytest-xdist's ``xdist_group`` mark cannot do this
with pytest 9.2 (it renames ``item._nodeid``, which pytest no longer reads), so the
scheduler below reads the table instead.
"""

XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def group_of(nodeid: str) -> str:
    group = next((g for prefix, g in GROUPS.items() if nodeid.startswith(prefix)), None)
    if group is not None:
        return group
    if nodeid.startswith("tests/test_contract.py::") and "[" in nodeid:
        return "contract-" + nodeid.split("[", 1)[1].split("-", 1)[0]  # [<variant>-<check>]
    return nodeid


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: xdist's load-by-scope scheduler with ``group_of`` as the scope."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)


ALONE = ("tests/test_cost.py::", "tests/test_report.py::")
"""Tests (their module fixtures included) that run with the machine to themselves: the other
worker waits. valgrind's repeats agree within 1 % and depends' req/s stays below raw's only
when nothing else runs (both failed beside the other worker)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Under xdist: a shared lock for every test, an exclusive one for ``ALONE``'s."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    alone = item.nodeid.startswith(ALONE)
    path = item.config._tmp_path_factory.getbasetemp().parent / "alone.lock"  # type: ignore[attr-defined]
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            return (yield)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pytest_configure(config: pytest.Config) -> None:
    # The children a test starts (``sessionbench micro`` runs pytest: pytest-benchmark turns
    # timing off when it sees PYTEST_XDIST_WORKER) must not know they run under xdist.
    for name in XDIST_ENV:
        os.environ.pop(name, None)


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
