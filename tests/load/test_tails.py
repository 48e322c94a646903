"""Censored latency, the tail rule and Little's law on histograms built by hand."""

import json
import os
import subprocess
import sys
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.common import histograms
from bench.load import follow, tails


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


# Follow mode on constructed recorder data. The recorder is a locust plug-in (importing
# locust monkey-patches the process), so it runs in a child interpreter: fake users call
# its request wrapper, whose "network" sleeps for the latency each URL names.
FOLLOW_SCRIPT = r"""
import json, sys, time
import gevent
from bench.load import recorder

class Response:
    def __init__(self, status): self.status_code = status

def fake_request(self, method, url, **kwargs):
    _, delay, status = url.split("/")
    started = time.time()
    gevent.sleep(float(delay))
    elapsed = (time.time() - started) * 1000
    failed = RuntimeError(f"HTTP {status}") if int(status) >= 400 else None
    recorder._on_request(method, url, elapsed, Response(int(status)), failed)
    return Response(int(status))

recorder._original_request = fake_request

def user(delay, status, until):
    while time.time() < until:
        recorder._tracked_request(None, "GET", f"/{delay}/{status}")

gevent.get_hub().loop.update_now()  # its timers count from the loop's cached clock
now = time.time()
window = (now + 0.1, now + 0.6)
recorder._set_window(window)
until = window[1] + 0.3  # users keep running after the window, as in follow mode
users = [gevent.spawn(user, 0.01, 200, until) for _ in range(4)]
users.append(gevent.spawn(user, 0.05, 503, until))  # answered "pool timeout"
stuck = float(sys.argv[1])
once = lambda: recorder._tracked_request(None, "GET", f"/{stuck}/200")
users.append(gevent.spawn_later(0.2, once))  # one request, started in the window
state = recorder.follow_to_the_end(window, limit=float(sys.argv[2]))
gevent.killall(users)
print(json.dumps({"state": state, "result": recorder._own_result()}))
"""


def run_follow(stuck: float, limit: float) -> dict[str, Any]:
    env = {**os.environ, "SESSIONBENCH_FOLLOW": str(limit)}
    done = subprocess.run(
        [sys.executable, "-c", FOLLOW_SCRIPT, str(stuck), str(limit)],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_follow_mode_resolves_a_request_that_outlives_the_window() -> None:
    # one user's request starts 0.1 s into a 0.5 s window and takes 1.2 s
    out = run_follow(stuck=1.2, limit=3.0)
    result = out["result"]
    assert out["state"]["complete"] is True and 0.7 < out["state"]["seconds"] < 1.5
    assert histograms.merge([result["censored_histogram"]]).get_total_count() >= 1  # as before
    fields = follow.cell_fields(result["follow"], users=6, rps=400.0, timeout=0.05)
    assert fields["censored"]["count"] == 0 and fields["tail_resolved"] is True
    assert 1_150_000 <= fields["latency_us"]["max"] <= 1_400_000  # its whole latency
    assert (
        fields["timeouts"]["count"] > 0 and fields["timeouts"]["of"] > fields["timeouts"]["count"]
    )
    assert (
        fields["started_in_window"] == fields["timeouts"]["of"] == sum(result["follow"]["per_user"])
    )
    assert not any(result["failures_by_phase"].values())  # a 503 timeout is no failure here
    assert sum(result["follow"]["timeouts_by_phase"].values()) >= fields["timeouts"]["count"]
    assert follow.timeouts_text(fields).endswith(
        f"of {fields['started_in_window']} timed out at 0.05 s"
    )


def test_follow_mode_censors_only_what_outlives_its_limit() -> None:
    out = run_follow(stuck=5.0, limit=0.5)
    assert out["state"]["complete"] is False and out["state"]["seconds"] < 1.0
    fields = follow.cell_fields(out["result"]["follow"], users=6, rps=400.0, timeout=0.05)
    assert fields["censored"]["count"] == 1  # the stuck one, at its age at the limit
    assert 0.8e6 <= fields["censored"]["max_age_us"] <= 1.4e6
    assert fields["follow"]["complete"] is False


def test_follow_window_rule_and_timeout_text() -> None:
    cell: dict[str, Any] = {
        "users": 128, "started_in_window": 128 * 75,
        "latency_us": {"max": 5_400_000}, "censored": {"count": 0},
        "follow": {"complete": True, "limit_s": 35.0},
        "timeouts": {"count": 3, "of": 19_200, "at_s": 30.0},
    }  # fmt: skip
    assert follow.window_notes(cell, duration=15.0) == []
    assert follow.timeouts_text(cell) == "3 of 19200 timed out at 30 s"
    short = follow.window_notes({**cell, "started_in_window": 128 * 40}, duration=10.0)
    assert any("40 requests per user" in n for n in short) and any("5.4 s" in n for n in short)
    assert follow.timeouts_text({**cell, "timeouts": {**cell["timeouts"], "count": 0}}) == ""
    assert follow.timeouts_text({"users": 1}) == ""
