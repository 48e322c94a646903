"""The library variants' lab routes and the "acknowledged before committed" scenario.

Real servers (``serve --lab``, fastapi-sqla from its own environment) on the real
PostgreSQL: each library's session used as its docs show, and what it answers for a
write whose COMMIT fails.
"""

import argparse
from collections.abc import Callable

import httpx
import pytest

from bench.pitfalls import scenarios
from bench.pitfalls.command import config_from
from bench.pitfalls.probe import BROKEN, OK, Target
from tests.pitfalls import test_pitfalls

target = test_pitfalls.target  # the same module-scoped fixture: a lab server per variant
run = test_pitfalls.run

LIBRARIES = ["fastapi_async_sqlalchemy", "advanced_alchemy", "fastapi_sqla"]


@pytest.mark.parametrize("name", LIBRARIES)
def test_each_library_mounts_its_lab_outside_the_schema(
    target: Callable[[str], Target], name: str
) -> None:
    base = target(name).server.base_url
    pool = httpx.get(f"{base}/lab/pool").json()
    assert pool["size"] == 10 and pool["checked_out"] == 0 and pool["registry"] is None
    assert not [p for p in httpx.get(f"{base}/openapi.json").json()["paths"] if "/lab" in p]
    rows = httpx.get(f"{base}/lab/stream", params={"pages": 2, "size": 3, "delay": 0}).text
    assert rows.splitlines() == [f'{{"id": {i}}}' for i in range(1, 7)]


def test_advanced_alchemy_autocommit_acknowledges_writes_it_never_commits(
    target: Callable[[str], Target],
) -> None:
    found = run(scenarios.acknowledged, target("advanced_alchemy"))
    assert found.outcome == BROKEN, found
    n = found.numbers
    # The middleware commits after the 201 was sent; the COMMIT fails and is only logged.
    assert n["statuses"] == {"201": 5} and n["acknowledged_not_committed"] == 5
    assert n["rows_written"] == 0 and n["leaked_connections"] == 0
    assert found.summary.startswith("5/5 failing commits answered 201")


@pytest.mark.parametrize("name", ["fastapi_sqla", "fastapi_async_sqlalchemy", "context", "depends"])
def test_a_commit_before_the_response_turns_a_failing_commit_into_a_500(
    target: Callable[[str], Target], name: str
) -> None:
    # fastapi-sqla commits when the response starts; the others commit in the handler.
    found = run(scenarios.acknowledged, target(name))
    assert found.outcome == OK, found
    n = found.numbers
    assert n["statuses"] == {"500": 5} and n["acknowledged"] == 0 and n["rows_written"] == 0


def test_fastapi_async_sqlalchemy_fans_out_on_multi_sessions_and_leaks_nothing(
    target: Callable[[str], Target],
) -> None:
    # Its README's concurrent-queries pattern: one session per gathered task.
    found = run(scenarios.fanout, target("fastapi_async_sqlalchemy"))
    assert found.outcome == OK, found
    assert found.numbers["at_once"] == {"200": 10} and found.numbers["leaked_connections"] == 0


def test_advanced_alchemy_autocommit_acknowledges_a_failed_commit(
    target: Callable[[str], Target],
) -> None:
    found = run(scenarios.failed_commit, target("advanced_alchemy"))
    assert found.outcome == BROKEN, found
    assert found.numbers["statuses"] == {"201": 3} and found.numbers["rows_written"] == 0


def test_the_matrix_covers_strategies_and_libraries_by_default() -> None:
    args = argparse.Namespace(
        mode="quick", variants=None, scenarios=None, soak=None, pool_size=10,
        pool_timeout=2.0, out=None, driver=None, pre_ping="both", repeats=None,
    )  # fmt: skip
    config = config_from(args)
    assert set(LIBRARIES) <= set(config.variants) and {"scoped", "context"} <= set(config.variants)
    assert not {"raw", "core"} & set(config.variants)
    assert "acknowledged" in config.scenarios


def test_the_streaming_hold_is_the_longest_run_of_held_samples() -> None:
    samples = [(0.0, 0), (0.1, 1), (0.2, 1), (0.35, 2), (0.4, 0), (0.5, 1), (0.6, 0)]
    assert scenarios._longest_run(samples) == pytest.approx(0.25)
    assert scenarios._longest_run([(0.0, 1)]) == 0.0  # one held sample: a per-page hold
    assert scenarios._longest_run([]) == 0.0
