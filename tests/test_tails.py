"""Censored latency, the tail rule and Little's law on histograms built by hand."""

from hdrh.histogram import HdrHistogram

from bench.common import histograms
from bench.load import tails


def hist(values: dict[int, int]) -> HdrHistogram:
    h = HdrHistogram(*histograms.HIST_RANGE)
    for value, count in values.items():
        h.record_value(value, count)
    return h


def near(value: int, expected: int) -> bool:
    """Equal at the histograms' 3 significant digits."""
    return abs(value - expected) <= expected / 1000


# 10 000 completed requests spread over 10–50 ms (a fair server at ~100 users)
COMPLETED = {10_000 + 4 * i: 1 for i in range(10_000)}
YOUNG = {400 * i: 1 for i in range(1, 101)}  # 100 in flight, 0.4–40 ms old


def test_young_censored_requests_leave_the_tail_resolved() -> None:
    result = tails.censoring(hist(COMPLETED), hist(YOUNG))
    assert result["censored"]["count"] == 100
    assert near(result["censored"]["max_age_us"], 40_000)
    assert result["tail_resolved"] is True
    assert result["tail_check"]["worst_shift_percent"] <= 5
    assert near(result["latency_completed_us"]["p99.9"], 49_960)


def test_starved_requests_in_flight_unresolve_the_tail() -> None:
    # 100 clients waiting for seconds when the window closes: p99.9 and max move
    result = tails.censoring(hist(COMPLETED), hist({3_000_000: 20, 10_000: 80}))
    assert result["tail_resolved"] is False
    assert result["latency_us"]["p99.9"] >= 2_990_000  # the lower bound shows the wait
    assert near(result["latency_completed_us"]["p99.9"], 49_960)  # what the old recorder printed
    assert result["tail_check"]["worst_shift_percent"] > 1000


def test_one_censored_request_older_than_every_completed_one_leaves_the_max_unknown() -> None:
    result = tails.censoring(hist(COMPLETED), hist({60_000: 1}))
    assert result["latency_us"]["p99.9"] == result["latency_completed_us"]["p99.9"]
    assert result["latency_us"]["max"] >= 59_900 and result["tail_resolved"] is False


def test_no_censored_request_is_resolved_and_nothing_completed_is_not() -> None:
    assert tails.censoring(hist(COMPLETED), hist({}))["tail_resolved"] is True
    assert tails.censoring(hist({}), hist({1_000: 3}))["tail_resolved"] is False


def test_censored_histogram_round_trips() -> None:
    result = tails.censoring(hist(COMPLETED), hist({30_000: 7}))
    assert histograms.merge([result["censored_histogram"]]).get_total_count() == 7


def test_littles_law_ratio_and_tolerance() -> None:
    fair = tails.littles_law(users=128, rps=2000, recorded_mean_us=64_000)
    assert fair["expected_mean_us"] == 64_000 and fair["ratio"] == 1.0 and fair["ok"]
    starved = tails.littles_law(users=128, rps=2000, recorded_mean_us=25_000)
    assert round(starved["ratio"], 2) == 0.39 and not starved["ok"]


def test_young_requests_that_lower_a_percentile_do_not_unresolve_the_tail() -> None:
    # a slow window: 1 000 completed, 128 in flight and younger than most
    completed = {100_000 + 400 * i: 1 for i in range(1_000)}
    result = tails.censoring(hist(completed), hist({1_000 * i: 1 for i in range(1, 129)}))
    assert result["latency_us"]["p50"] < 0.95 * result["latency_completed_us"]["p50"]
    assert result["tail_resolved"] is True and result["tail_check"]["worst_shift_percent"] == 0
