"""Locust plug-in imported by every locustfile: records what locust's own stats round away.

**The window.** The master (or the only) locust process sets the measurement window
``[every user spawned + warm-up, + duration)`` on its clock (workers of a loaded machine
can start seconds after the master), writes it to ``start.json`` for the
runner (CPU snapshots are taken at its edges) and broadcasts it to its workers with
locust's own messages, so every process measures the same window. Right after the window
it stops the users (each finishes its task, up to locust's stop timeout); each worker
then sends what it recorded to the master, again as a locust message, and the master
alone merges it all into ``result.json`` (``processes``: how many it merged) and quits.
This is also how a distributed locust (workers on other machines) would report.

**Per request.** ``FastHttpSession.request`` is wrapped so that every user greenlet's
request in flight has a start time. A request that completes inside the window goes, in
microseconds, into an HdrHistogram and is counted for its user (fairness). A request
still in flight when the window closes is *censored*: its age at the window's end (a
lower bound of its latency) goes into a second histogram, once, whether it completes
later in the stop phase or never. Every request of the whole run is counted by name and
status (integrity), every failure by phase (``warmup``, ``window``, ``stop``), and every
acknowledged PATCH by todo id with the title it set (lost-update check; ids with a
PATCH or DELETE whose outcome the client does not know are listed as unsure).

**Co-scheduled windows.** With ``SESSIONBENCH_WINDOW_AT`` (epoch s) the window starts
at that instant instead of after the warm-up, so several locust runs loading several
servers at once measure the same window; ``SESSIONBENCH_WINDOWS`` (default 1) cuts the
window into that many back-to-back sub-windows, each with its own histogram and failure
count (``sub_windows`` in ``result.json``). ``late_s`` says how long after the window's
start every user was running (0: on time).

**Follow mode** (``SESSIONBENCH_FOLLOW`` = a limit in s, > 0; one locust process only).
The users keep running after the window (so the contention stays what it was) until every
request *started* inside the window has ended, or the limit has passed; then the run
ends as usual. Every window-started request gets its full latency (``follow.histogram``),
or, answered 503 (``variants.app``: no pooled connection within ``pool_timeout``), counts
as a timeout at its latency (``follow.timeouts_histogram``; in this mode a 503 is no
failure, ``follow.timeouts_by_phase`` counts them by the phase they started in); only one
still in flight at the limit is censored at its age then (``follow.unfinished_histogram``).
``follow.per_user``: window-started requests per user (fairness); ``follow.seconds``: how
long after the window the last one ended.

Configured by environment variables set by the runner: SESSIONBENCH_OUT,
SESSIONBENCH_WARMUP, SESSIONBENCH_DURATION, SESSIONBENCH_WINDOW_AT, SESSIONBENCH_WINDOWS,
SESSIONBENCH_FOLLOW (names, defaults and the two files: ``bench.load.protocol``).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections import Counter
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import events
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from bench.common.histograms import HIST_RANGE
from bench.load import protocol

_settings = protocol.Settings.read()
SEED_ROWS = _settings.seed_rows
WINDOW_MESSAGE = "sessionbench-window"
RESULT_MESSAGE = "sessionbench-result"
# s the master waits for workers' results after they stopped (a lost worker never sends its)
RESULT_TIMEOUT = _settings.result_timeout

_warmup = _settings.warmup
_duration = _settings.duration
_out = _settings.out
_window_at = _settings.window_at
_sub_count = _settings.windows
_follow = _settings.follow  # s after the window; 0: off
POOL_TIMEOUT_STATUS = 503  # variants.app: no pooled connection within pool_timeout
_todo_url = re.compile(r"/todos/(\d+)$")

histogram = HdrHistogram(*HIST_RANGE)  # completed in the window, µs
censored = HdrHistogram(*HIST_RANGE)  # in flight at the window's end: age then, µs
per_user: Counter[int] = Counter()  # user greenlet -> requests completed in the window
counts: Counter[str] = Counter()  # "POST /todos 201" -> n, whole run
failures: dict[str, Counter[str]] = {p: Counter() for p in ("warmup", "window", "stop")}
patched: dict[str, str] = {}  # todo id -> title of its last acknowledged PATCH
unsure: set[str] = set()  # ids whose last PATCH/DELETE got no acknowledgement
state: dict[str, Any] = {
    "start": None, "window": None, "started": False, "sent": False, "written": False,
}  # fmt: skip
worker_results: list[dict[str, Any]] = []  # on the master: what each worker sent
sub_histograms = [HdrHistogram(*HIST_RANGE) for _ in range(_sub_count)]  # per sub-window, µs
sub_failures = [0] * _sub_count
# follow mode: every request started in the window, to its end
followed = HdrHistogram(*HIST_RANGE)  # answered (not a pool timeout), full latency, µs
timed_out = HdrHistogram(*HIST_RANGE)  # answered 503 pool timeout, full latency, µs
unfinished = HdrHistogram(*HIST_RANGE)  # still in flight at the follow limit: age then, µs
follow_per_user: Counter[int] = Counter()  # user greenlet -> requests started in the window
timeouts_by_phase: Counter[str] = Counter()  # phase a 503 pool timeout started in -> n
follow_state: dict[str, Any] = {"seconds": None, "complete": None}
_given_up: set[int] = set()  # id() of InFlight entries counted as unfinished


class InFlight:
    """One user's request in flight: its start (epoch s) and whether it was censored."""

    __slots__ = ("censored", "start")

    def __init__(self) -> None:
        self.start = time.time()
        self.censored = False


_in_flight: dict[Any, InFlight] = {}  # user greenlet -> its request in flight
_original_request = FastHttpSession.request


def _tracked_request(
    self: FastHttpSession, method: str, url: str, *args: Any, **kwargs: Any
) -> Any:
    me = gevent.getcurrent()
    _in_flight[me] = InFlight()
    match = _todo_url.search(url) if method in ("PATCH", "DELETE") else None
    if match:
        unsure.add(match[1])
    try:
        response = _original_request(self, method, url, *args, **kwargs)
    finally:
        _in_flight.pop(me, None)
    if match:
        _acknowledged(method, match[1], getattr(response, "status_code", 0), kwargs.get("json"))
    return response


FastHttpSession.request = _tracked_request  # type: ignore[method-assign]


def _acknowledged(method: str, todo: str, status: int, body: Any) -> None:
    if method == "DELETE" and status == 204:
        patched.pop(todo, None)
        unsure.discard(todo)
    elif method == "PATCH" and status == 200 and isinstance(body, dict) and "title" in body:
        patched[todo] = body["title"]
        unsure.discard(todo)


def _set_window(window: tuple[float, float]) -> None:
    state["window"] = window
    gevent.spawn_later(max(0.0, window[1] - time.time()), _censor_in_flight)


def _censor(entry: InFlight, end: float) -> None:
    entry.censored = True
    censored.record_value(max(1, round((end - entry.start) * 1e6)))


def _censor_in_flight() -> None:
    """At the window's end: every request still in flight is censored at its age."""
    end = state["window"][1]
    for entry in list(_in_flight.values()):
        if not entry.censored and entry.start < end:
            _censor(entry, end)


def _phase(now: float) -> str:
    window = state["window"]
    if window is None or now < window[0]:
        return "warmup"
    return "window" if now < window[1] else "stop"


_environment: dict[str, Any] = {"runner": None}


@events.init.add_listener
def _on_init(environment: Environment, **kwargs: Any) -> None:
    runner = environment.runner
    _environment["runner"] = runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(
            WINDOW_MESSAGE, lambda environment, msg, **kw: _set_window(tuple(msg.data["window"]))
        )
    elif isinstance(runner, MasterRunner):
        runner.register_message(
            RESULT_MESSAGE, lambda environment, msg, **kw: worker_results.append(msg.data)
        )


@events.test_start.add_listener
def _on_test_start(environment: Environment, **kwargs: Any) -> None:
    state["started"] = True
    state["start"] = time.time()


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int, **kwargs: Any) -> None:
    """Every user is running (on every worker): the warm-up starts now, on this clock."""
    runner = _environment["runner"]
    if isinstance(runner, WorkerRunner) or runner is None or state["window"] is not None:
        return  # a worker gets the master's window as a message
    spawned = time.time()
    begin = spawned + _warmup if _window_at is None else _window_at
    window = (begin, begin + _duration)
    _set_window(window)
    if isinstance(runner, MasterRunner):
        runner.send_message(WINDOW_MESSAGE, {"window": window})
    state["late_s"] = max(0.0, spawned - begin)
    # End the run right after the window (locust's own -t takes whole seconds only), or,
    # in follow mode, once every window-started request has ended.
    if _follow > 0:
        gevent.spawn(_follow_then_end, runner)
    else:
        gevent.spawn_later(max(0.0, window[1] - spawned) + 0.05, _end_run, runner)
    if _out:
        start = {"start": state["start"], "spawned": spawned, "window": window,
                 "late_s": state["late_s"]}  # fmt: skip
        protocol.write(_out, protocol.START_FILE, start)


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    exception: BaseException | None,
    **kwargs: Any,
) -> None:
    now = time.time()
    status = getattr(response, "status_code", 0) or 0
    counts[f"{request_type} {name} {status}"] += 1
    timeout = _follow > 0 and status == POOL_TIMEOUT_STATUS
    entry = _in_flight.get(gevent.getcurrent())
    if timeout:
        timeouts_by_phase[_phase(entry.start if entry is not None else now)] += 1
    if exception is not None and not timeout:
        failures[_phase(now)][f"{request_type} {name}: {str(exception)[:120]}"] += 1
    window = state["window"]
    if window is None:
        return
    sub = _sub_window(window, now)
    if sub is not None and exception is not None and not timeout:
        sub_failures[sub] += 1
    if _follow > 0 and entry is not None:
        _follow_record(entry, window, response_time, timeout=timeout)
    if entry is not None and entry.censored:
        return  # counted at its age when the window closed
    if entry is not None and entry.start < window[1] <= now:
        _censor(entry, window[1])  # completed after the window closed, before the snapshot ran
    elif window[0] <= now < window[1]:
        histogram.record_value(max(1, round(response_time * 1000)))
        per_user[id(gevent.getcurrent())] += 1  # each locust user runs in its own greenlet
        if sub is not None:
            sub_histograms[sub].record_value(max(1, round(response_time * 1000)))


def _sub_window(window: tuple[float, float], now: float) -> int | None:
    """Index of the sub-window *now* falls in (None: outside the window)."""
    if not window[0] <= now < window[1]:
        return None
    return min(_sub_count - 1, int((now - window[0]) * _sub_count / (window[1] - window[0])))


def _follow_record(
    entry: InFlight, window: tuple[float, float], response_time: float, *, timeout: bool
) -> None:
    """Follow mode: a request that started in the window ended (answered or failed)."""
    if not window[0] <= entry.start < window[1] or id(entry) in _given_up:
        return
    (timed_out if timeout else followed).record_value(max(1, round(response_time * 1000)))
    follow_per_user[id(gevent.getcurrent())] += 1


def _window_started(window: tuple[float, float]) -> list[tuple[Any, InFlight]]:
    return [
        (user, entry)
        for user, entry in list(_in_flight.items())
        if window[0] <= entry.start < window[1] and id(entry) not in _given_up
    ]


def follow_to_the_end(
    window: tuple[float, float], limit: float, poll: float = 0.02
) -> dict[str, Any]:
    """Wait (users still running) until no window-started request is in flight or
    *limit* s after the window's end; count the ones still in flight then as unfinished,
    at their age. Returns :data:`follow_state`."""
    gevent.sleep(max(0.0, window[1] - time.time()))
    deadline = window[1] + limit
    while _window_started(window) and time.time() < deadline:
        gevent.sleep(poll)
    now = time.time()
    left = _window_started(window)
    for user, entry in left:
        _given_up.add(id(entry))
        unfinished.record_value(max(1, round((now - entry.start) * 1e6)))
        follow_per_user[id(user)] += 1
    follow_state.update(seconds=now - window[1], complete=not left)
    return follow_state


def _follow_then_end(runner: Any) -> None:
    follow_to_the_end(state["window"], _follow)
    _end_run(runner)


def _follow_result() -> dict[str, Any] | None:
    if _follow <= 0:
        return None
    return {
        "limit_s": _follow,
        "seconds": follow_state["seconds"],
        "complete": follow_state["complete"],
        "histogram": followed.encode().decode(),
        "timeouts_histogram": timed_out.encode().decode(),
        "unfinished_histogram": unfinished.encode().decode(),
        "per_user": sorted(follow_per_user.values()),
        "timeouts_by_phase": dict(timeouts_by_phase),
    }


def merge_follow(results: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Every process's follow result in one (None: follow mode was off)."""
    found = [r for r in results if r]
    if not found:
        return None
    merged = {
        key: histograms_added([r[key] for r in found])
        for key in ("histogram", "timeouts_histogram", "unfinished_histogram")
    }
    phases: Counter[str] = Counter()
    for result in found:
        phases.update(result["timeouts_by_phase"])
    seconds = [r["seconds"] for r in found if r["seconds"] is not None]
    return {
        "limit_s": found[0]["limit_s"],
        "seconds": max(seconds) if seconds else None,
        "complete": all(r["complete"] for r in found),
        **merged,
        "per_user": sorted(n for r in found for n in r["per_user"]),
        "timeouts_by_phase": dict(phases),
    }


def histograms_added(encoded: list[str]) -> str:
    total = HdrHistogram(*HIST_RANGE)
    for one in encoded:
        total.add(HdrHistogram.decode(one))
    return str(total.encode().decode())


def _end_run(runner: Any) -> None:
    """Master or only process: stop the users, gather every process's results, quit."""
    runner.stop()  # a master waits until every worker's users have stopped
    if isinstance(runner, MasterRunner):
        deadline = time.time() + RESULT_TIMEOUT
        # every worker that ever connected (stopped ones leave locust's worker_count)
        while len(worker_results) < len(runner.clients.all) and time.time() < deadline:
            gevent.sleep(0.05)
    _write_result()
    runner.quit()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **kwargs: Any) -> None:
    # (locust fires test_stop on a worker before its first test too: only the real end counts)
    if isinstance(environment.runner, WorkerRunner) and state["started"] and not state["sent"]:
        state["sent"] = True  # sent before locust's "client_stopped", so the master has it
        environment.runner.send_message(RESULT_MESSAGE, _own_result())


def _own_result() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "window": state["window"],
        "histogram": histogram.encode().decode(),
        "censored_histogram": censored.encode().decode(),
        "per_user": sorted(per_user.values()),
        "counts": dict(counts),
        "failures_by_phase": {phase: dict(c) for phase, c in failures.items()},
        "patched": patched,
        "unsure": sorted(unsure),
        "late_s": state.get("late_s", 0.0),
        "sub_windows": [
            {"histogram": h.encode().decode(), "failures": f}
            for h, f in zip(sub_histograms, sub_failures, strict=True)
        ],
        "follow": _follow_result(),
    }


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from every process's: histograms added, counts summed, lists joined."""
    merged_hist = HdrHistogram(*HIST_RANGE)
    merged_censored = HdrHistogram(*HIST_RANGE)
    total: Counter[str] = Counter()
    by_phase: dict[str, Counter[str]] = {p: Counter() for p in failures}
    for result in results:
        merged_hist.add(HdrHistogram.decode(result["histogram"]))
        merged_censored.add(HdrHistogram.decode(result["censored_histogram"]))
        total.update(result["counts"])
        for phase, failed in result["failures_by_phase"].items():
            by_phase[phase].update(failed)
    return {
        "processes": len(results),
        "pids": [r["pid"] for r in results],
        "hosts": [r.get("host") for r in results],  # the master's first
        "windows": [r["window"] for r in results],
        "window": state["window"],
        "histogram": merged_hist.encode().decode(),
        "censored_histogram": merged_censored.encode().decode(),
        "per_user": sorted(n for r in results for n in r["per_user"]),
        "counts": dict(total),
        "failures_by_phase": {phase: dict(c) for phase, c in by_phase.items()},
        "patched": {i: t for r in results for i, t in r["patched"].items()},
        "unsure": sorted({i for r in results for i in r["unsure"]}),
        "late_s": max(r.get("late_s", 0.0) for r in results),
        "sub_windows": _merge_sub_windows(results),
        "follow": merge_follow([r.get("follow") for r in results]),
    }


def _merge_sub_windows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every process's sub-windows added index by index."""
    count = max((len(r.get("sub_windows", [])) for r in results), default=0)
    merged = []
    for i in range(count):
        hist = HdrHistogram(*HIST_RANGE)
        failed = 0
        for result in results:
            subs = result.get("sub_windows", [])
            if i < len(subs):
                hist.add(HdrHistogram.decode(subs[i]["histogram"]))
                failed += subs[i]["failures"]
        merged.append({"histogram": hist.encode().decode(), "failures": failed})
    return merged


def _write_result() -> None:
    if not _out or state["written"]:
        return
    state["written"] = True
    results = [_own_result(), *worker_results]
    protocol.write(_out, protocol.RESULT_FILE, merge_results(results))


@events.quitting.add_listener
def _on_quitting(environment: Environment, **kwargs: Any) -> None:
    # Ended some other way (locust's -t safety net): still leave what was recorded.
    if not isinstance(environment.runner, WorkerRunner):
        _write_result()
