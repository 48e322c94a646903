"""Locust plug-in imported by every locustfile: records what locust's own stats round away.

Every request's latency goes, in microseconds, into an HdrHistogram when it completes
inside the measurement window ``[test start + warm-up, + duration)``, and is counted for
its user (for fairness); every request of the whole run (warm-up and stop phase
included) is counted by name and status, for the integrity checks. At exit each locust
process writes ``<pid>.json`` into ``$SESSIONBENCH_OUT``; the runner merges them.
Configured by environment variables set by the runner: SESSIONBENCH_OUT,
SESSIONBENCH_WARMUP, SESSIONBENCH_DURATION.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import events
from locust.env import Environment

from bench.histograms import HIST_RANGE

SEED_ROWS = int(os.environ.get("SESSIONBENCH_SEED_ROWS", "10000"))

_warmup = float(os.environ.get("SESSIONBENCH_WARMUP", "0"))
_duration = float(os.environ.get("SESSIONBENCH_DURATION", "1e9"))
_out = os.environ.get("SESSIONBENCH_OUT")

histogram = HdrHistogram(*HIST_RANGE)
per_user: Counter[int] = Counter()  # user greenlet -> requests completed in the window
counts: Counter[str] = Counter()  # "POST /todos 201" -> n, whole run
window_failures: Counter[str] = Counter()  # "POST /todos: <error>" -> n, in the window
state: dict[str, Any] = {"start": None, "window": None}


@events.test_start.add_listener
def _on_test_start(environment: Environment, **kwargs: Any) -> None:
    start = time.time()
    state["start"] = start
    state["window"] = (start + _warmup, start + _warmup + _duration)
    # End the run right after the window (locust's own -t takes whole seconds only).
    if environment.runner is not None:
        gevent.spawn_later(_warmup + _duration + 0.05, environment.runner.quit)
    if _out:
        path = Path(_out) / f"start-{os.getpid()}.json"
        path.write_text(json.dumps({"start": start, "window": state["window"]}))


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    exception: BaseException | None,
    **kwargs: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    counts[f"{request_type} {name} {status}"] += 1
    window = state["window"]
    if window is not None and window[0] <= time.time() < window[1]:
        histogram.record_value(max(1, round(response_time * 1000)))
        per_user[id(gevent.getcurrent())] += 1  # each locust user runs in its own greenlet
        if exception is not None:
            window_failures[f"{request_type} {name}: {str(exception)[:120]}"] += 1


@events.quitting.add_listener
def _on_quitting(environment: Environment, **kwargs: Any) -> None:
    if not _out:
        return
    runner = environment.runner
    result = {
        "pid": os.getpid(),
        "start": state["start"],
        "window": state["window"],
        "histogram": histogram.encode().decode(),
        "per_user": sorted(per_user.values()),
        "counts": dict(counts),
        "window_failures": dict(window_failures),
        "cpu_warning": bool(runner and runner.cpu_warning_emitted),
    }
    (Path(_out) / f"{os.getpid()}.json").write_text(json.dumps(result))
