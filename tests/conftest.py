"""Shared fixtures: one real PostgreSQL per test session, and variant servers started on demand.

PostgreSQL is the embedded server (or ``DATABASE_URL`` when set); variants run as real
``sessionbench serve`` processes, exactly as the benchmarks run them.

``scripts/test`` runs the suite on two pytest-xdist workers (``--dist loadgroup``). Each
worker is its own test session: its own embedded PostgreSQL (a unix socket in its own temp
folder), its own servers on free ports. ``GROUPS`` keeps together what must not be split
or must not run beside itself; ``ALONE`` fixtures are set up with the machine to
themselves.

Why this file schedules through pytest-xdist's private methods (``_split_scope``,
``_assign_work_unit``, ``_reschedule`` of its ``LoadScopeScheduling``) and not through the
supported means alone (pytest 9.2, pytest-xdist 3.8):

- ``--dist loadgroup`` with ``@pytest.mark.xdist_group`` is what ``GROUPS`` would be, but
  under pytest 9.2 the mark has no effect: a worker tells the controller a test's group
  only by appending ``@group`` to ``item._nodeid``, and pytest 9.2 no longer reads that
  attribute (``Node.nodeid`` is built from the structured ``_id``), so grouped tests are
  spread like any others (pytest-dev/pytest-xdist#1386; its fix, #1388, is unreleased).
  The controller never collects: the node id is all it knows of a test, so a table of
  node-id prefixes is what a scheduler can group by.
- ``--dist loadscope`` and ``loadfile`` group only by module or class: the "timing" group
  spans seven modules, and each variant's contract checks are one group inside a module.
- ``--dist worksteal`` groups nothing: the module-scoped runs (``small_run``,
  ``cost_run``, ``co_run``, ``micro_run``) would be built again on each worker that steals
  one of their tests.
- Every supported mode hands a worker its next unit while it still holds two pending
  tests, so a unit queued behind a long test on one worker leaves the other idle at the
  end; ``_reschedule`` below waits until the worker is down to its last test.

When a released pytest-xdist groups by the mark again, ``GROUPS`` becomes
``xdist_group`` marks and only the ordering (``FIRST``) and ``_reschedule`` stay here.
``tests/test_scheduling.py`` fails when an entry of these tables names no test.
"""

import asyncio
import fcntl
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bench.common import database
from bench.common.server import VariantServer
from variants.settings import DatabaseUrl

GROUPS: dict[str, str] = {
    # Timing and CPU measurements, the pitfall matrix's timed scenarios and the
    # micro-benchmarks: one after the other, never beside each other. (The valgrind run
    # and the co-scheduled run are ALONE fixtures: nothing runs beside them at all.)
    "tests/common/test_cpu.py::": "timing",
    "tests/micro/test_micro.py::": "timing",
    "tests/pitfalls/test_pitfalls.py::": "timing",
    "tests/pool/test_pool.py::test_repro_": "timing",
    "tests/load/test_runner.py::test_a_starving_strategy": "timing",
    # Module-scoped fixtures built once (a load run, a cost run, a report, a server).
    "tests/cost/test_cost.py::": "cost",
    "tests/report/test_report.py::": "report",
    "tests/report/test_report_browser.py::": "report-browser",
    "tests/variants/test_lab.py::": "lab",
    # The micro-benchmarks' own session PostgreSQL and event loop: one worker starts them.
    "bench/micro/": "micro",
}
"""nodeid prefix → group: the tests of a group run on one worker, one after the other.

Every check of one variant in ``test_contract.py`` is a group too (its server starts once);
every other test is a group of its own (see the module's docstring for why a table)."""

FIRST: tuple[str, ...] = (
    # The longest first, so that the workers end together: worker-seconds of a clean-clone
    # run with --durations=0 on 2 workers (2026-12-02, other jobs loading the machine: about
    # 2-3x an idle run's; the order is what counts).
    "timing",  # 310 s
    "cost",  # 205 s, valgrind (ALONE set-up)
    "report",  # 134 s
    "contract-fastapi_sqla",  # 133 s: builds the variant's own environment first
    "lab",  # 103 s
    "tests/load/test_coschedule.py::test_an_injected",  # 104 s (ALONE set-up)
    "report-browser",  # 88 s
    "tests/pool/test_pool.py::test_runner_writes_pool_fields_and_the_queue_axis",  # 86 s
    "tests/load/test_runner.py::test_axes_run_every_series_on_its_own_server",  # 83 s
    "tests/test_style.py::test_tool_is_clean[mypy]",  # 60 s
    "tests/load/test_runner.py::test_a_dying_server_fails_its_cell_and_the_run_goes_on",  # 59 s
    "tests/load/test_runner.py::test_smoke_run_end_to_end",  # 53 s
    "tests/common/test_driver.py::test_run_on_both_drivers_records_the_evidence",  # 48 s
    "tests/pitfalls/test_pitfalls_runner.py::test_the_restart_runs_with_pre_ping",  # 44 s
    "tests/load/test_faults.py::test_a_killed_embedded_postmaster_fails_its_cell_and_the_run_goes_on",
    "tests/load/test_distributed.py::test_a_worker_lost_mid_cell_invalidates_the_cell",  # 42 s
    "tests/load/test_topology.py::test_database_server_load_and_runner_on_four_hosts",  # 39 s
    "tests/load/test_runner.py::test_a_deadlocked_server_is_recorded_as_a_stall",  # 39 s
    "tests/load/test_distributed.py::test_two_workers_load_one_cell_and_the_master_merges_both",
)
"""Groups that start first, in this order (every other group follows in xdist's order: most
tests first). Long ones go early: a long test that starts last keeps the other worker idle.
An entry is a group or a node-id prefix (the group of the tests it starts)."""

XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


CONTRACT = "tests/variants/test_contract.py::"
"""The contract checks: each variant's are a group (its server starts once per worker)."""


def group_of(nodeid: str) -> str:
    group = next((g for prefix, g in GROUPS.items() if nodeid.startswith(prefix)), None)
    if group is not None:
        return group
    if nodeid.startswith(CONTRACT) and "[" in nodeid:
        return "contract-" + nodeid.split("[", 1)[1].split("-", 1)[0]  # [<variant>-<check>]
    return nodeid


def first_rank(group: str) -> int:
    """The place of *group* in ``FIRST`` (an entry that is it or a prefix of it), else last."""
    return next((i for i, entry in enumerate(FIRST) if group.startswith(entry)), len(FIRST))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: xdist's load-by-scope scheduler with ``group_of`` as the scope."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the first call: the queue is complete, nothing assigned
                self.ordered = True
                units = sorted(self.workqueue.items(), key=lambda unit: first_rank(unit[0]))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

        def _reschedule(self, node: Any) -> None:
            """xdist's, but a worker gets its next group only when it is down to its last
            test (which it holds until it knows the next): groups queued behind a long test
            on one worker would leave the other idle at the end."""
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return GroupScheduling(config, log)


ALONE = ("cost_run", "co_run")
"""Fixtures whose set-up runs with the machine to itself: the other worker finishes its test
and waits. valgrind's repeats agree within 1 % (``test_cost.py``'s cost run) only when
nothing else runs (it failed beside the other worker); the co-scheduled run
(``test_coschedule.py``) drops every window in which something else shares the server
core. The tests that only read what they measured need no lock of their own."""

_lock: list[Any] = []  # this worker's lock file while a test runs (shared, or exclusive)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Under xdist: a shared lock for every test (``ALONE``'s set-up makes it exclusive)."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    path = item.config._tmp_path_factory.getbasetemp().parent / "alone.lock"  # type: ignore[attr-defined]
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        _lock.append(lock)
        try:
            return (yield)
        finally:
            _lock.remove(lock)
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Iterator[Any]:
    """An ``ALONE`` fixture is set up under the exclusive lock (the same file: flock converts
    this worker's shared lock, then waits for the other's to go), then shared again."""
    if fixturedef.argname not in ALONE or not _lock:
        return (yield)
    fcntl.flock(_lock[-1], fcntl.LOCK_EX)
    try:
        return (yield)
    finally:
        fcntl.flock(_lock[-1], fcntl.LOCK_SH)


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
    # All at once: each server's graceful shutdown takes its own second or two, and one after
    # another they were ~30 s of every worker's teardown.
    with ThreadPoolExecutor() as pool:
        list(pool.map(VariantServer.stop, servers.values()))
