"""Each reproduction of docs/findings/ shows, in its quick form, the behaviour its page quotes.

They run in-process on the session's PostgreSQL (the ``db`` fixture sets ``DATABASE_URL``,
which the reproductions use instead of starting their own server).
"""

import asyncio
import json
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bench.common.co_record import CoGroup, CoRecord
from bench.findings import (
    acknowledged,
    bytecode_count,
    concurrency_cost,
    fanout,
    gc_freeze,
    streaming,
    threadpool_deadlock,
)
from bench.load.coschedule import CoSettings
from bench.pool import repro
from variants.settings import DatabaseUrl


def lines(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The printed lines, keyed by their first words (the case)."""
    return {line.split("  ")[0].strip(): line for line in capsys.readouterr().out.splitlines()}


def number(pattern: str, line: str) -> float:
    found = re.search(pattern, line)
    assert found, f"{pattern!r} not in {line!r}"
    return float(found.group(1))


def test_barging_gives_some_checkouts_waits_far_above_the_median() -> None:
    barging = asyncio.run(repro.simulate("after", "sqlalchemy", clients=64, pool=5, seconds=0.5))
    fifo = asyncio.run(repro.simulate("after", "fifo", clients=64, pool=5, seconds=0.5))
    assert max(barging.waits) > 10 * barging.percentile(50)
    assert barging.jain < 0.6 < 0.95 < fifo.jain
    assert fifo.max_overtaken == 0 < barging.max_overtaken


def test_concurrency_cost_pairs_each_window_and_splits_user_and_system_cpu() -> None:
    def window(
        dropped: str | None, a: tuple[int, float, float], b: tuple[int, float, float]
    ) -> dict:
        def side(requests: int, user: float, system: float) -> dict:
            return {"requests": requests, "server_user_s": user, "server_system_s": system,
                    "server_cpu_s": user + system}  # fmt: skip

        return {"dropped": dropped, "members": {"context": side(*a), "depends": side(*b)}}

    one = [window(None, (1000, 0.9, 0.1), (1000, 0.9 * k, 0.1)) for k in (0.95, 0.96, 0.97)]
    one.append(window("unsaturated: the servers used 60 % of their core", (500, 0.45, 0.05),
                      (500, 0.432, 0.05)))  # fmt: skip
    one.append(window("steal 9.0 % > 5 %", (1000, 0.9, 0.1), (1000, 9.0, 0.1)))  # not used
    many = [window(None, (1000, 0.8, 0.1), (1000, 0.8 * k, 0.1 * 1.3)) for k in (1.3, 1.32, 1.34)]
    group = {"scenario": "read", "status": "ok"}
    doc = CoRecord(settings=CoSettings(anchors=["context"]).record(), groups=[
        CoGroup.model_validate(group | {"users": 1, "members": ["context", "depends"],
                                        "windows": one}),
        CoGroup.model_validate(group | {"users": 32, "members": ["context", "depends"],
                                        "windows": many}),
        CoGroup.model_validate(group | {"users": 32, "members": ["context", "scoped"],
                                        "windows": many}),  # another pair
    ])  # fmt: skip
    low, high = concurrency_cost.rows(doc, "context", "depends")
    assert (low.users, low.windows, high.users, high.windows) == (1, 4, 32, 3)
    assert low.cpu.ratio < 0.97 and low.cpu.high is not None and low.cpu.high < 1
    assert abs(low.system.ratio - 1) < 1e-9 and abs(high.system.ratio - 1.3) < 1e-9
    assert abs(high.user.ratio - 1.32) < 0.01 and high.cpu.low is not None and high.cpu.low > 1
    assert round(low.a_cpu_us) == 1000
    text = concurrency_cost.table([low, high], "context", "depends")
    assert "depends/context CPU per request" in text.splitlines()[0]
    assert len(text.splitlines()) == 3


@pytest.mark.slow
def test_acknowledged_before_commit(db: DatabaseUrl, capsys: pytest.CaptureFixture[str]) -> None:
    acknowledged.main(["--quick"])
    out = lines(capsys)
    for case in ("advanced-alchemy autocommit", "commit after yield (request)"):
        assert "client got 2× 201" in out[case]
        assert "rows written 0" in out[case]
        assert "acknowledged but not committed 2" in out[case]
    assert "client got 2× 500" in out['commit after yield, scope="function"']


@pytest.mark.slow
def test_threadpool_deadlock(db: DatabaseUrl, capsys: pytest.CaptureFixture[str]) -> None:
    threadpool_deadlock.main(["--quick"])
    out = lines(capsys)
    stalled, fixed = out["as written"], out["close in handler"]
    assert "answered before pool_timeout   0" in stalled
    assert number(r"idle in transaction during the stall (\d+)", stalled) == 2
    assert "500" in stalled
    assert "answered before pool_timeout  16" in fixed and "16× 200" in fixed


def test_fanout_on_one_session(db: DatabaseUrl, capsys: pytest.CaptureFixture[str]) -> None:
    fanout.main(["--quick"])
    out = capsys.readouterr().out
    assert "concurrent operations are not permitted" in out or "IllegalStateChangeError" in out
    assert number(r"(\d+) connection\(s\) still checked out", out) >= 1
    assert "one session per task, gathered   4 connection(s)" in out


@pytest.mark.slow
def test_streaming_holds_a_connection(db: DatabaseUrl, capsys: pytest.CaptureFixture[str]) -> None:
    streaming.main(["--quick"])
    out = lines(capsys)
    request, function = out["Depends (request scope)"], out['Depends(scope="function")']
    stream_s = number(r"rows in ([\d.]+) s", request)
    assert number(r"longest hold ([\d.]+) s", request) > 0.5 * stream_s > 0.1
    assert "1 checked out, 1 idle in transaction" in function
    for case in ("read before streaming", "session per page"):
        assert number(r"longest hold ([\d.]+) s", out[case]) < 0.1
        assert "0 checked out, 0 idle in transaction" in out[case]


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk; scripts/test installs it)"
)
def test_gc_freeze_makes_full_collections_cheaper(db: DatabaseUrl) -> None:
    sides, pairs = gc_freeze.measure(db, users=32, seconds=4.0, windows=3, warmup=2.0)
    frozen, default = sides["frozen"], sides["default"]
    # at least the 3 windows; more (up to 12) while a server has made no full collection
    assert 3 <= len(pairs) <= 12
    for side in (frozen, default):  # requests' garbage reaches the oldest generation
        assert side.requests > 0 and side.full_gcs >= 1
    # the default server's full collections also scan the ~100,000 objects of its imports
    assert 3 * frozen.full_gc_ns / frozen.full_gcs < default.full_gc_ns / default.full_gcs


def test_bytecode_count_names_packages_and_tells_a_call_from_a_resumption() -> None:
    fastapi_file = "/x/.venv/lib/python3.11/site-packages/fastapi/routing.py"
    assert bytecode_count.package_of(fastapi_file) == "fastapi"
    stdlib = bytecode_count.STDLIB
    assert bytecode_count.package_of(f"{stdlib}asyncio/tasks.py") == "asyncio (stdlib)"
    assert bytecode_count.package_of(f"{stdlib}contextlib.py") == "contextlib (stdlib)"
    assert bytecode_count.package_of(f"{bytecode_count.ROOT}variants/context.py") == "variants"

    async def inner() -> None:
        for _ in range(3):
            await asyncio.sleep(0)  # three resumptions, one call

    async def outer() -> None:
        await inner()

    tracer = bytecode_count.Tracer()
    tracer.install()
    try:
        tracer.active = True
        asyncio.run(outer())
        tracer.active = False
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
    bytecodes, calls = tracer.take()
    here = bytecode_count.package_of(__file__)
    # calls of this file: asyncio.run's main coroutine (outer) and inner, each once
    assert calls[here] == 2
    assert bytecodes[here] > 2 * calls[here]
    assert calls["asyncio (stdlib)"] > 0
    assert tracer.take() == ({}, {})


@pytest.mark.slow
def test_bytecode_count_attributes_depends_solver_to_fastapi(
    db: DatabaseUrl, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "counts.json"
    bytecode_count.main(["--quick", "--pairs", "context:depends", "--json", str(out)])
    raw = json.loads(out.read_text())
    counts = {name: bytecode_count.summarize(doc) for name, doc in raw.items()}
    for name, endpoints in counts.items():
        for endpoint, c in endpoints.items():
            reps = raw[name]["endpoints"][endpoint]["repeats"]
            per = raw[name]["endpoints"][endpoint]["ops"] * bytecode_count.ENDPOINTS[endpoint]
            # the packages' medians add up to the total, and nothing is left unnamed
            assert [sum(r["bytecodes"].values()) / per for r in reps] == c.totals
            assert abs(sum(c.bytecodes.values()) - c.total) <= 0.001 * c.total
            assert set(c.bytecodes) >= {"fastapi", "starlette", "sqlalchemy", "asyncpg"}
            assert c.bytecodes.get("other", 0) < 0.01 * c.total
            assert "sessionbench" not in c.bytecodes  # the driver is not traced
            assert c.spread_percent < 1.0  # deterministic: repeats (nearly) equal
            assert sum(c.calls.values()) < sum(c.bytecodes.values()) / 5
    context, depends = counts["context"]["get"], counts["depends"]["get"]
    # Depends' solver (fastapi.dependencies.utils) runs per request in depends only
    assert depends.bytecodes["fastapi"] > context.bytecodes["fastapi"] + 300  # +712 measured
    assert depends.total > context.total
    assert "depends − context · get" in capsys.readouterr().out


def test_bytecode_count_since_gives_each_variant_s_step_by_package() -> None:
    def counts(fastapi: int, sqlalchemy: int) -> dict[str, Any]:
        rep = {"bytecodes": {"fastapi": fastapi, "sqlalchemy": sqlalchemy}, "calls": {}}
        return {"context": {"endpoints": {"get": {"ops": 2, "repeats": [rep, rep]}}}}

    text = bytecode_count.report(counts(300, 500), [], None, ("older", counts(200, 520)))
    assert "context − context (older) · get: +40 bytecodes/request (360 → 400" in text
    step = text.split("(older) · get", 1)[1]
    assert step.index("fastapi") < step.index("sqlalchemy")  # +50 before −10
    assert "+50" in step and "-10" in step
