"""The co-scheduled pass: its schedule and pairing, the machine guard, its verdicts, and a real
run that must find a known injected cost (bench/load/coschedule.py, bench/common/pairs.py)."""

import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.common import cpu, histograms, pairs, tally
from bench.common.co_record import CoGroup, CoRecord
from bench.common.pairs import co_comparison, co_comparisons, co_pairs
from bench.common.result_files import RunFile, load
from bench.common.stats import compare_windows, false_discoveries, holm
from bench.load import coschedule
from bench.load.coschedule import CoSettings, Member

CLI = [sys.executable, "-m", "bench.cli"]


def test_every_series_meets_each_anchor_and_calibration_only_context() -> None:
    series = ["context", "depends", "scoped", "context_plus5"]
    groups = coschedule.groups(series, CoSettings(anchors=["context", "depends"]))
    assert groups == [
        ("context", "depends"),
        ("context", "scoped"),
        ("depends", "scoped"),
        ("context", "context_plus5"),
    ]
    trios = coschedule.groups(series, CoSettings(anchors=["context", "depends"], group="all"))
    assert trios == [("context", "depends", "scoped"), ("context", "context_plus5")]


def test_the_group_order_rotates_every_round_and_each_group_runs_once_per_round() -> None:
    settings = CoSettings(anchors=["context", "depends"], rounds=3)
    plan = list(coschedule.schedule(["context", "depends", "scoped"], ["read"], [32], settings))
    rounds = [[g for r, _, _, g in plan if r == n] for n in (1, 2, 3)]
    assert all(sorted(r) == sorted(rounds[0]) for r in rounds)
    assert rounds[0][0] != rounds[1][0] != rounds[2][0]


class FakeServer:
    pid = None


def record(settings: CoSettings, groups: list[dict[str, Any]]) -> CoRecord:
    """A co-scheduled record of *groups* (dicts as run.json holds them) under *settings*."""
    return CoRecord(settings=settings.record(), groups=[CoGroup.model_validate(g) for g in groups])


def member(name: str) -> Member:
    return Member(name, name, None, FakeServer())  # type: ignore[arg-type]


def snapshot(servers: dict[str, float], steal: float = 0.0) -> cpu.Snapshot:
    processes = {f"server:{n}": s for n, s in servers.items()}
    processes |= {f"locust:{n}": 0.0 for n in servers}
    return cpu.Snapshot(processes, [0.0, 0.0], [steal, 0.0])


def results_for(names: list[str], windows: int) -> dict[str, Any]:
    hist = histograms.merge([])
    hist.record_value(1000)
    encoded = histograms.encode(hist)
    subs = [{"histogram": encoded, "failures": 0} for _ in range(windows)]
    return {n: {"sub_windows": subs} for n in names}


def test_a_window_with_steal_is_dropped_from_both_sides_of_its_pair() -> None:
    names = ["context", "depends"]
    # Two 1-s windows; the servers use 0.5 s each per window; the second window has 30 % steal.
    snaps = [
        (0.0, snapshot({"context": 0.0, "depends": 0.0})),
        (1.0, snapshot({"context": 0.5, "depends": 0.5})),
        (2.0, snapshot({"context": 1.0, "depends": 1.0}, steal=0.3)),
    ]
    tallies = {
        "context": [
            tally.Row(0, 0, 0, 0),
            tally.Row(1, 500, 500_000_000, 0),
            tally.Row(2, 1000, 1_000_000_000, 0),
        ],
        "depends": [
            tally.Row(0, 0, 0, 0),
            tally.Row(1, 400, 500_000_000, 0),
            tally.Row(2, 800, 1_000_000_000, 0),
        ],
    }
    windows = coschedule._windows(snaps, [member(n) for n in names], results_for(names, 2), tallies)
    assert windows[0].dropped is None
    assert str(windows[1].dropped).startswith("steal 30.0 %")
    assert windows[0].members["depends"].requests == 400  # the server's own count
    assert windows[0].members["context"].share == pytest.approx(0.5)
    co = record(CoSettings(anchors=names), [
        {"scenario": "read", "users": 32, "members": names, "status": "ok", "windows": windows}
    ])  # fmt: skip
    pairs = co_pairs(co, "context", "depends", "read", 32)
    assert pairs == [[(1000.0, 800.0)]]  # req/s per core, the stolen window left out of both


def test_a_window_where_the_servers_do_not_fill_their_core_is_dropped() -> None:
    names = ["context", "depends"]
    snaps = [(0.0, snapshot({"context": 0.0, "depends": 0.0})),
             (1.0, snapshot({"context": 0.3, "depends": 0.3}))]  # fmt: skip
    tallies = {n: [tally.Row(0, 0, 0, 0), tally.Row(1, 100, 300_000_000, 0)] for n in names}
    [window] = coschedule._windows(
        snaps, [member(n) for n in names], results_for(names, 1), tallies
    )
    assert str(window.dropped).startswith("unsaturated")
    [kept] = coschedule._windows(
        snaps, [member(n) for n in names], results_for(names, 1), tallies, saturated=0.0
    )
    assert kept.dropped is None  # --co-min-busy 0: every window kept


def windows_doc(ratios: list[float], anchors: list[str], b: str) -> CoRecord:
    windows = [
        {"dropped": None, "members": {
            anchors[0]: {"requests": 1000, "server_cpu_s": 1.0},
            b: {"requests": round(1000 * r), "server_cpu_s": 1.0},
        }}
        for r in ratios
    ]  # fmt: skip
    group = {"scenario": "read", "users": 32, "members": [anchors[0], b], "status": "ok",
             "windows": windows}  # fmt: skip
    return record(CoSettings(anchors=anchors), [group])


def test_a_known_difference_is_found_in_the_right_direction_and_turned_around() -> None:
    rng = random.Random(1)
    doc = windows_doc([0.9 * math.exp(rng.gauss(0, 0.03)) for _ in range(12)], ["context"], "x")
    [row] = co_comparisons(doc)
    assert row.comparison.significant and not row.comparison.better
    assert row.comparison.low < 0.9 < row.comparison.high
    back = co_comparison(doc, "x", "context", "read", 32)
    assert back is not None and back.comparison.better
    assert back.comparison.ratio == pytest.approx(1 / row.comparison.ratio)


def test_equal_sides_end_in_no_difference_within_the_margin() -> None:
    rng = random.Random(2)
    doc = windows_doc([math.exp(rng.gauss(0, 0.02)) for _ in range(16)], ["context"], "x")
    [row] = co_comparisons(doc)
    assert row.comparison.equivalent and "no difference within ±5 %" in row.comparison.verdict()


def test_correlated_windows_count_as_fewer() -> None:
    drift = [0.05 * math.sin(i / 3) for i in range(24)]  # slow wander: neighbours alike
    correlated = compare_windows([[(1.0, math.exp(d)) for d in drift]])
    independent = compare_windows([[(1.0, math.exp(d))] for d in drift])  # 24 groups of one
    assert "n_eff" in correlated.verdict() and "n_eff" not in independent.verdict()
    assert correlated.ratio == pytest.approx(independent.ratio)
    assert correlated.low is not None and correlated.high is not None
    assert independent.low is not None and independent.high is not None
    assert (correlated.high - correlated.low) > (independent.high - independent.low)


def test_holm_withholds_a_marginal_claim_in_a_large_family() -> None:
    rng = random.Random(3)
    marginal = compare_windows([[(1.0, 1.03 * math.exp(rng.gauss(0, 0.04))) for _ in range(8)]])
    assert marginal.claim == "different"  # alone, its own 95 % CI excludes 1
    nulls = [
        compare_windows([[(1.0, math.exp(rng.gauss(0, 0.08))) for _ in range(6)]])
        for _ in range(40)
    ]
    assert marginal.claim_p is not None and 0.05 / 41 < marginal.claim_p < 0.05
    decided = holm([marginal, *nulls])
    assert not decided[0].significant
    assert "Holm" in decided[0].verdict()
    assert holm([marginal])[0].significant  # a family of one: its own test


def test_false_discoveries_allow_claims_holm_withholds_and_charge_each_look() -> None:
    rng = random.Random(6)

    def windows(ratio: float, sd: float, n: int) -> Any:
        return compare_windows([[(1.0, ratio * math.exp(rng.gauss(0, sd))) for _ in range(n)]])

    real = [windows(1.15, 0.05, 8) for _ in range(10)]  # ten clear effects
    nulls = [windows(1.0, 0.08, 6) for _ in range(20)]  # twenty without one
    marginal = windows(1.03, 0.025, 8)
    assert marginal.claim == "different"  # alone, its own 95 % CI excludes 1
    family = [marginal, *real, *nulls]
    assert not holm(family)[0].significant  # Holm: the chance of any false claim ≤ 5 %
    by_rate = false_discoveries(family)  # BH: ≤ 5 % of the claims false, on average
    assert by_rate[0].significant
    assert all(c.significant for c in by_rate[1:11])
    assert not any(c.significant or c.equivalent for c in by_rate[11:])
    looked = false_discoveries(family, [40, *[1] * 30])  # its p-value times 40 looks
    assert not looked[0].significant and "Benjamini–Hochberg" in looked[0].verdict()


def test_calibration_series_share_one_group_with_context() -> None:
    series = ["depends", "context", "scoped", "context_plus5", "context_plus10"]
    groups = coschedule.groups(series, CoSettings(anchors=["depends", "context"], group="all"))
    assert groups == [("depends", "context", "scoped"),
                      ("context", "context_plus5", "context_plus10")]  # fmt: skip


def test_with_an_axis_each_value_has_its_own_anchors_and_chains() -> None:
    series = ["depends+pool10", "scoped+pool10", "depends+pool32", "context+pool32",
              "scoped+pool32"]  # fmt: skip
    settings = CoSettings(anchors=["depends", "context"], group="first")
    assert coschedule.groups(series, settings) == [
        ("depends+pool10", "scoped+pool10"),
        ("depends+pool32", "context+pool32"),
        ("depends+pool32", "scoped+pool32"),
    ]
    rng = random.Random(7)

    def noisy(x: float) -> list[float]:
        return [x * math.exp(rng.gauss(0, 0.02)) for _ in range(8)]

    doc = record(settings, [group_of(*g, noisy(1.2)) for g in coschedule.groups(series, settings)])
    found = {(r.a, r.b) for r in co_comparisons(doc)}
    assert found == {
        ("depends+pool10", "scoped+pool10"),
        ("depends+pool32", "context+pool32"),
        ("depends+pool32", "scoped+pool32"),
        ("context+pool32", "scoped+pool32"),  # chained through depends+pool32
    }


def test_moderate_steal_is_kept_by_default_and_dropped_under_a_lower_limit() -> None:
    names = ["context", "depends"]
    snaps = [
        (0.0, snapshot({"context": 0.0, "depends": 0.0})),
        (1.0, snapshot({"context": 0.5, "depends": 0.5}, steal=0.1)),
    ]
    rows = [tally.Row(0, 0, 0, 0), tally.Row(1, 500, 500_000_000, 0)]
    tallies = {"context": rows, "depends": rows}
    members = [member(n) for n in names]
    [kept] = coschedule._windows(snaps, members, results_for(names, 1), tallies)
    assert kept.dropped is None and kept.steal_percent[0] == pytest.approx(10)
    [dropped] = coschedule._windows(snaps, members, results_for(names, 1), tallies, 5.0)
    assert dropped.dropped == "steal 10.0 % > 5 %"


def test_looks_go_round_the_cells_before_a_cell_gets_a_second() -> None:
    todo = [
        ("read", 32, ("depends", "context", "a")),
        ("read", 32, ("depends", "context", "b")),
        ("read", 32, ("depends", "context", "c")),
        ("write", 128, ("depends", "context", "a")),
        ("multi", 128, ("depends", "context", "d")),
        ("multi", 128, ("depends", "context", "e")),
    ]
    assert [(s, g[-1]) for s, _, g in coschedule.by_cell_rounds(todo)] == [
        ("read", "a"), ("write", "a"), ("multi", "d"), ("read", "b"), ("multi", "e"),
        ("read", "c"),
    ]  # fmt: skip


def test_only_groups_with_an_unresolved_comparison_are_looked_at_again() -> None:
    rng = random.Random(6)

    def noisy(x: float, sd: float) -> list[float]:
        return [x * math.exp(rng.gauss(0, sd)) for _ in range(8)]

    settings = CoSettings(anchors=["depends"], group="all")
    clear = group_of("depends", "context", noisy(1.25, 0.02))
    unclear = group_of("depends", "scoped", noisy(1.04, 0.10))
    doc = record(settings, [clear, unclear])
    planned = [(1, "read", 32, ("depends", "context")), (1, "read", 32, ("depends", "scoped"))]
    assert coschedule.unresolved(doc, planned) == [("read", 32, ("depends", "scoped"))]
    lost = group_of("depends", "core", noisy(1.1, 0.02))
    for window in lost["windows"]:
        window["dropped"] = "steal 9.0 % > 5 %"
    doc.groups.append(CoGroup.model_validate(lost))
    planned.append((1, "read", 32, ("depends", "core")))
    assert pairs.missing(doc) == [("read", 32, "depends", "core")]
    assert coschedule.unresolved(doc, planned) == [
        ("read", 32, ("depends", "scoped")),
        ("read", 32, ("depends", "core")),  # every window dropped: looked at again
    ]
    unclear_again = group_of("depends", "scoped", noisy(1.3, 0.02)) | {"look": 2}
    doc.groups.append(CoGroup.model_validate(unclear_again))
    [row] = [r for r in co_comparisons(doc) if r.b == "scoped"]
    assert row.looks == 2


@pytest.fixture(scope="module")
def co_run(tmp_path_factory: pytest.TempPathFactory, db: Any) -> Path:
    """context against context_plus10 (a known extra CPU cost), co-scheduled."""
    out = tmp_path_factory.mktemp("co") / "run"
    subprocess.run(
        [*CLI, "run", "--variants", "context,context_plus10", "--scenarios", "read",
         "--users", "16", "--trials", "1", "--duration", "0.5", "--warmup", "0.3",
         "--co-anchors", "context", "--co-windows", "8", "--co-window", "1", "--co-budget", "0",
         # the direction under test, not the guards (their own tests): a CI host's steal,
         # or other jobs on its cores, would drop every window
         "--co-max-steal", "100", "--co-min-busy", "0", "--out", str(out)],
        check=True, capture_output=True, timeout=240, env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_injected_cost_is_resolved_in_the_right_direction(co_run: Path) -> None:
    co = load(co_run / "run.json", RunFile).coscheduled
    assert co is not None
    assert co.settings.windows == 8 and co.series == ["context", "context_plus10"]
    [group] = co.groups
    assert group.status == "ok", group.reasons
    assert all(check.ok for side in group.sides.values() for check in side.integrity), group.sides
    kept = [w for w in group.windows if not w.dropped]
    assert len(kept) >= 4, [w.dropped for w in group.windows]
    for window in kept:
        for side in window.members.values():
            assert side.requests_source == "server tally" and side.requests > 0
            assert abs(side.requests - (side.requests_recorded or 0)) <= 0.2 * side.requests
    row = co_comparison(co, "context", "context_plus10", "read", 16)
    assert row is not None
    assert row.comparison.ratio < 1 and row.comparison.significant, row.comparison.verdict()


def group_of(a: str, b: str, ratios: list[float], extra_s: float = 0.0) -> dict[str, Any]:
    windows = [
        {"dropped": None, "members": {
            a: {"requests": 1000, "server_cpu_s": 1.0},
            b: {"requests": round(1000 * r), "server_cpu_s": 1.0,
                "calibration_cpu_s": extra_s * round(1000 * r) or None},
        }}
        for r in ratios
    ]  # fmt: skip
    return {"scenario": "read", "users": 32, "members": [a, b], "status": "ok",
            "windows": windows}  # fmt: skip


def test_the_report_counts_verdicts_chains_context_and_checks_the_calibration(
    tmp_path: Path,
) -> None:
    from bench.common.blocks import to_markdown
    from bench.load import coscheduled_report as coscheduled

    rng = random.Random(4)

    def noisy(x: float) -> list[float]:
        return [x * math.exp(rng.gauss(0, 0.02)) for _ in range(10)]

    settings = CoSettings(anchors=["depends", "context"], group="first")
    doc = record(settings, [
        group_of("depends", "context", noisy(1.2)),
        group_of("depends", "scoped", noisy(1.15)),
        # 100 µs extra per request on a 1,000-µs request: predicted ×0.909
        group_of("context", "context_plus10", noisy(1 / 1.1), extra_s=100e-6),
    ])  # fmt: skip
    rows = co_comparisons(doc)
    chained = next(r for r in rows if (r.a, r.b) == ("context", "scoped"))
    assert "chained through depends" in chained.comparison.verdict()
    assert chained.comparison.ratio == pytest.approx(1.15 / 1.2, rel=0.03)
    text = to_markdown(coscheduled.section(tmp_path, doc))
    assert "read at 32 users: 3 of 3 comparisons end in a verdict" in text
    lost = group_of("depends", "sqlmodel", noisy(1.0))
    for window in lost["windows"]:
        window["dropped"] = "steal 9.0 % > 5 %"
    doc.groups.append(CoGroup.model_validate(lost))
    text = to_markdown(coscheduled.section(tmp_path, doc))
    assert (
        "read at 32 users: 3 of 4 comparisons end in a verdict (1 not measured: every window "
        "of sqlmodel dropped)"
    ) in text
    calibration = [line for line in text.splitlines() if "context_plus10" in line][-1]
    cells = [c.strip() for c in calibration.strip("|").split("|")]
    assert cells[3] == "0.909" and cells[4] == "yes" and cells[-1] == "right"
