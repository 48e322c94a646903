"""Python bytecodes and Python calls per request, by package: what callgrind cannot name.

``python -m bench.findings.bytecode_count [--variants depends,context,...] [--pairs A:B,...]
[--requests 40] [--repeats 3] [--warmup 20] [--json PATH] [--from PATH] [--since PATH] [--quick]``

On CPython 3.11 a callgrind dump has no Python frames, so ``sessionbench cost --explain``
puts most of a difference between two variants under "interpreter". This counts what the
interpreter ran instead: ``sys.settrace`` (and ``threading.settrace`` for threads the app
starts) with ``frame.f_trace_opcodes``, one ``opcode`` event per bytecode executed and one
``call`` event per Python function entered (a coroutine or generator resuming is not a call:
its ``RESUME`` has a non-zero argument), each attributed to the package of the code's file —
fastapi, starlette, sqlalchemy, asyncpg, anyio, pydantic, asyncio (stdlib), contextlib
(stdlib), …, variants (the apps' own code), … (:func:`package_of`).

One fresh process per variant (``PYTHONHASHSEED=0``) imports the variant's app, runs its
lifespan and drives it through its ASGI interface on a uvloop event loop, in-process: no
server, so no HTTP parsing or uvicorn code is counted (the same for every variant), and no
timer of a server ticks into the counts. The database is real (``DATABASE_URL`` or the
embedded PostgreSQL, reset to the seed before each variant). The requests are the cost
command's (``bench/cost/endpoints.py``): ``get`` = GET /todos/{id} over the seed's first
1,000 rows (``database.spread_row``); ``write`` = POST /todos + PATCH + DELETE of the row it
created, counted per request (cycle / 3). After
*warmup* untraced operations per endpoint, each repeat counts *requests* operations; the
driver's own frames (sessionbench's code under bench/) are not traced. Printed: per variant
and endpoint the bytecodes and calls per request by package; per pair B vs A the difference
by package.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import variants
from bench.common import database, result_files
from bench.common.run_folder import RunFolder
from variants.settings import DRIVER_ENV

DRIVER_FILE = os.path.normcase(os.path.abspath(__file__))
STDLIB = os.path.normcase(sysconfig.get_paths()["stdlib"]) + os.sep
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(DRIVER_FILE))) + os.sep
DRIVER = os.path.join(ROOT, "bench") + os.sep
"""The driver's code (this module and what it calls: ``database.spread_row``): not traced."""
SITE = f"{os.sep}site-packages{os.sep}"
RENAMES = {"_pytest": "pytest", "typing_extensions.py": "typing_extensions"}
RESUME = 151  # 3.11's RESUME: argument 0 at a function's start, 1–3 after a yield or await
GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
ENDPOINTS = {"get": 1, "write": 3}
"""The cost command's endpoints measured here, and their requests per operation."""
PAIRS = [("context", "depends"), ("scoped", "scoped_basehttp")]
"""The pairs of issue 26 (baseline, other)."""
REFERENCE = RunFolder(Path(ROOT) / "results" / "reference").cost
HEADERS = [(b"host", b"sessionbench"), (b"user-agent", b"bytecode-count")]


def package_of(filename: str) -> str:
    """``fastapi``, ``contextlib (stdlib)``, ``variants``, … for a code file."""
    path = os.path.normcase(filename)
    if SITE in path:
        top = path.split(SITE, 1)[1].split(os.sep, 1)[0]
        top = RENAMES.get(top, top)
        return top.removesuffix(".py")
    if path.startswith(STDLIB):
        top = path[len(STDLIB) :].split(os.sep, 1)[0].removesuffix(".py")
        return f"{top} (stdlib)"
    if path.startswith("<frozen "):
        return f"{path.removeprefix('<frozen ').rstrip('>')} (stdlib)"
    if path.startswith(ROOT):
        top = path[len(ROOT) :].split(os.sep, 1)[0]
        return {"variants": "variants", "bench": "sessionbench"}.get(top, "other")
    if path.startswith("<"):
        return "generated (<string>)"
    return "other"


@dataclass
class Tally:
    """Bytecodes and calls per code file, of one thread."""

    bytecodes: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)


class Tracer:
    """The trace function of every thread; counts only while :attr:`active`."""

    def __init__(self) -> None:
        self.active = False
        self.tallies: list[Tally] = []
        self._local = threading.local()
        self._fresh: dict[CodeType, bytes] = {}

    def _tally(self) -> Tally:
        tally: Tally | None = getattr(self._local, "tally", None)
        if tally is None:
            tally = self._local.tally = Tally()
            self.tallies.append(tally)
        return tally

    def _is_call(self, frame: FrameType) -> bool:
        code = frame.f_code
        if not code.co_flags & GENERATOR_FLAGS:
            return True
        raw = self._fresh.get(code)
        if raw is None:
            raw = self._fresh[code] = code.co_code
        at = frame.f_lasti
        return raw[at] != RESUME or raw[at + 1] == 0

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if not self.active or event != "call":
            return None
        key = frame.f_code.co_filename
        if os.path.normcase(key).startswith(DRIVER):
            return None
        tally = self._tally()
        if self._is_call(frame):
            tally.calls[key] = tally.calls.get(key, 0) + 1
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        counts = tally.bytecodes

        def opcode(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode" and self.active:
                counts[key] = counts.get(key, 0) + 1
            return opcode

        return opcode

    def install(self) -> None:
        threading.settrace(self.trace)
        sys.settrace(self.trace)

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        """Bytecodes and calls by package since the last take (all threads), then zeroed."""
        bytecodes: dict[str, int] = {}
        calls: dict[str, int] = {}
        for tally in self.tallies:
            for source, into in ((tally.bytecodes, bytecodes), (tally.calls, calls)):
                for filename, n in source.items():
                    package = package_of(filename)
                    into[package] = into.get(package, 0) + n
                source.clear()
        return bytecodes, calls


# --- the ASGI driver (not traced: its files are under DRIVER) --------------------------------


class App:
    """A variant's ASGI app, started (lifespan) and called one request at a time."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def _lifespan_event(self, message: str) -> None:
        await self._inbox.put({"type": f"lifespan.{message}"})
        reply = await self._outbox.get()
        if reply["type"] != f"lifespan.{message}.complete":
            raise RuntimeError(f"lifespan {message}: {reply}")

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan = asyncio.ensure_future(self.app(scope, self._inbox.get, self._outbox.put))
        await self._lifespan_event("startup")

    async def stop(self) -> None:
        await self._lifespan_event("shutdown")
        if self._lifespan is not None:
            await self._lifespan

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; its status and JSON body (None for an empty body)."""
        raw = b"" if body is None else json.dumps(body).encode()
        headers = list(HEADERS)
        if body is not None:
            headers += [(b"content-type", b"application/json"),
                        (b"content-length", str(len(raw)).encode())]  # fmt: skip
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": self.state.copy(),
        }  # fmt: skip
        done = self.loop.create_future()  # a C future: waiting on it runs no Python frame
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await done  # as uvicorn: a disconnect only once the response is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and not done.done():
                    done.set_result(None)

        await self.app(scope, receive, send)
        if not done.done():
            done.set_result(None)
        text = b"".join(chunks)
        return status, json.loads(text) if text else None


def _expect(got: tuple[int, Any], status: int, what: str) -> Any:
    if got[0] != status:
        raise RuntimeError(f"{what} → {got[0]} (expected {status}): {got[1]!r:.200}")
    return got[1]


async def _get(app: App, i: int) -> None:
    _expect(await app.request("GET", f"/todos/{database.spread_row(i)}"), 200, "GET")


async def _write(app: App, i: int) -> None:
    created = _expect(await app.request("POST", "/todos", {"title": "cost"}), 201, "POST")
    path = f"/todos/{created['id']}"
    _expect(await app.request("PATCH", path, {"done": True}), 200, "PATCH")
    _expect(await app.request("DELETE", path), 204, "DELETE")


Op = Callable[[App, int], Awaitable[None]]
OPS: dict[str, Op] = {"get": _get, "write": _write}


async def _many(app: App, op: Op, n: int) -> None:
    for i in range(n):
        await op(app, i)


def child(name: str, requests: int, repeats: int, warmup: int) -> dict[str, Any]:
    """Run in the variant's own process: every endpoint's repeats, counts per operation."""
    import uvloop
    from uvicorn.importer import import_from_string

    variant = variants.get(name)
    os.environ.setdefault(DRIVER_ENV, variant.driver)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    tracer = Tracer()
    tracer.install()  # before the app starts any thread: its threads get the tracer too
    app = App(import_from_string(variant.app), loop)
    loop.run_until_complete(app.start())
    out: dict[str, Any] = {"variant": name, "endpoints": {}}
    try:
        for endpoint, op in OPS.items():
            loop.run_until_complete(_many(app, op, warmup))
            rows = []
            for _ in range(repeats):
                gc.collect()
                tracer.take()
                tracer.active = True
                loop.run_until_complete(_many(app, op, requests))  # the same rows every repeat
                tracer.active = False
                bytecodes, calls = tracer.take()
                rows.append({"bytecodes": bytecodes, "calls": calls})
            out["endpoints"][endpoint] = {"ops": requests, "repeats": rows}
    finally:
        tracer.active = False
        loop.run_until_complete(app.stop())
        loop.close()
    return out


# --- the parent: one process per variant, tables ---------------------------------------------


@dataclass
class Counts:
    """One variant's endpoint: per request, by package, median of the repeats."""

    bytecodes: dict[str, float]
    calls: dict[str, float]
    totals: list[float]
    """Bytecodes per request of each repeat."""

    @property
    def total(self) -> float:
        """Median of the repeats' totals (the packages' medians add up to it, or nearly)."""
        return statistics.median(self.totals)

    @property
    def spread_percent(self) -> float:
        return 100 * (max(self.totals) - min(self.totals)) / statistics.median(self.totals)


def _median(reps: list[dict[str, Any]], kind: str, per: int) -> dict[str, float]:
    keys = {k for rep in reps for k in rep[kind]}
    return {k: statistics.median(rep[kind].get(k, 0) / per for rep in reps) for k in keys}


def summarize(raw: dict[str, Any]) -> dict[str, Counts]:
    out = {}
    for endpoint, doc in raw["endpoints"].items():
        per = doc["ops"] * ENDPOINTS[endpoint]
        reps = doc["repeats"]

        totals = [sum(rep["bytecodes"].values()) / per for rep in reps]
        out[endpoint] = Counts(_median(reps, "bytecodes", per), _median(reps, "calls", per), totals)
    return out


def run_variant(name: str, url: database.DatabaseUrl, args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(database.reset(url))
    env = {**os.environ, "PYTHONHASHSEED": "0", "DATABASE_URL": url.url}
    cmd = [sys.executable, "-m", "bench.findings.bytecode_count", "--child", name,
           "--requests", str(args.requests), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: exit {done.returncode}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(names: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    with database.database_url_or_embedded() as (url, _embedded):
        asyncio.run(database.ensure_schema(url))
        return {name: run_variant(name, url, args) for name in names}


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.1f}"


def variant_table(name: str, endpoint: str, counts: Counts) -> str:
    lines = [f"{name} · {endpoint}: {_fmt(counts.total)} bytecodes/request, "
             f"{_fmt(sum(counts.calls.values()))} calls/request "
             f"(repeat spread {counts.spread_percent:.3f} %)",
             f"  {'package':<24}{'bytecodes':>12}{'share':>8}{'calls':>10}"]  # fmt: skip
    for package, n in sorted(counts.bytecodes.items(), key=lambda kv: -kv[1]):
        share = 100 * n / counts.total
        calls = counts.calls.get(package, 0)
        lines.append(f"  {package:<24}{_fmt(n):>12}{share:>7.1f}%{_fmt(calls):>10}")
    return "\n".join(lines)


def difference(a: Counts, b: Counts) -> list[tuple[str, float, float]]:
    """(package, Δ bytecodes, Δ calls) per request of *b* − *a*, largest |Δ bytecodes| first."""
    keys = set(a.bytecodes) | set(b.bytecodes) | set(a.calls) | set(b.calls)
    rows = [(k, b.bytecodes.get(k, 0) - a.bytecodes.get(k, 0),
             b.calls.get(k, 0) - a.calls.get(k, 0)) for k in keys]  # fmt: skip
    return sorted(rows, key=lambda r: (-abs(r[1]), r[0]))


def difference_table(a_name: str, b_name: str, endpoint: str, a: Counts, b: Counts) -> str:
    rows = difference(a, b)
    delta = b.total - a.total
    lines = [f"{b_name} − {a_name} · {endpoint}: {delta:+,.0f} bytecodes/request "
             f"({_fmt(a.total)} → {_fmt(b.total)}, {100 * delta / a.total:+.1f} %)",
             f"  {'package':<24}{'Δ bytecodes':>12}{'of Δ':>8}{'Δ calls':>10}"]  # fmt: skip
    for package, d_bytes, d_calls in rows:
        if d_bytes == 0 and d_calls == 0:
            continue
        share = f"{100 * d_bytes / delta:7.1f}%" if delta else "      -"
        lines.append(f"  {package:<24}{d_bytes:>+12,.0f}{share}{d_calls:>+10,.1f}")
    return "\n".join(lines)


def instructions(reference: Path | None) -> dict[tuple[str, str], float]:
    """Callgrind's instructions per request at the fewest clients (1 in every preset), by
    (variant, endpoint), from a ``sessionbench cost`` result (empty without one)."""
    if reference is None or not reference.exists():
        return {}
    return result_files.load(reference, result_files.CostFile).per_request()


def tracking(
    counts: dict[str, dict[str, Counts]],
    pairs: list[tuple[str, str]],
    ins: dict[tuple[str, str], float],
) -> str:
    """Per pair and endpoint: Δ bytecodes, Δ instructions (callgrind), instructions per
    bytecode of the difference."""
    lines = [f"{'pair':<36}{'endpoint':<10}{'Δ bytecodes':>12}{'Δ instr.':>12}{'instr./bc':>10}"]
    for a, b in pairs:
        for endpoint in ENDPOINTS:
            if a not in counts or b not in counts or (a, endpoint) not in ins:
                continue
            d_bc = counts[b][endpoint].total - counts[a][endpoint].total
            d_in = ins.get((b, endpoint), float("nan")) - ins[(a, endpoint)]
            ratio = f"{d_in / d_bc:10.1f}" if d_bc else "         -"
            lines.append(f"{b + ' − ' + a:<36}{endpoint:<10}{d_bc:>+12,.0f}{d_in:>+12,.0f}{ratio}")
    return "\n".join(lines) if len(lines) > 1 else ""


def report(
    raw: dict[str, dict[str, Any]],
    pairs: list[tuple[str, str]],
    reference: Path | None = None,
    since: tuple[str, dict[str, dict[str, Any]]] | None = None,
) -> str:
    """The tables; *since*: (label, counts of another environment) — each variant's
    difference from itself there (a release step, by package)."""
    counts = {name: summarize(doc) for name, doc in raw.items()}
    blocks = [variant_table(name, ep, c) for name, eps in counts.items() for ep, c in eps.items()]
    if since is not None:
        label, older = since[0], {name: summarize(doc) for name, doc in since[1].items()}
        for name in (n for n in counts if n in older):
            for endpoint in (e for e in counts[name] if e in older[name]):
                blocks.append(
                    difference_table(
                        f"{name} ({label})", name, endpoint, older[name][endpoint],
                        counts[name][endpoint],
                    )
                )  # fmt: skip
    for a, b in pairs:
        if a in counts and b in counts:
            for endpoint in ENDPOINTS:
                blocks.append(
                    difference_table(a, b, endpoint, counts[a][endpoint], counts[b][endpoint])
                )
    tracked = tracking(counts, pairs, instructions(reference))
    if tracked:
        blocks.append(f"bytecodes vs callgrind's instructions ({reference}):\n{tracked}")
    return "\n\n".join(blocks)


def _since(path: Path | None) -> tuple[str, dict[str, dict[str, Any]]] | None:
    return None if path is None else (path.stem, json.loads(path.read_text()))


def _pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for pair in text.split(","):
        a, _, b = pair.partition(":")
        out.append((a, b))
    return out


def _names(pairs: list[tuple[str, str]], extra: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for name in [n for pair in pairs for n in pair] + extra:
        if name and name not in seen:
            seen.add(name)
            yield name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=",".join(f"{a}:{b}" for a, b in PAIRS),
                        help="BASELINE:OTHER,… (default: %(default)s)")  # fmt: skip
    parser.add_argument("--variants", default="", help="more variants (compared with context)")
    parser.add_argument("--requests", type=int, default=40, help="operations per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20, help="untraced operations first")
    parser.add_argument("--json", type=Path, help="write the raw counts here")
    parser.add_argument("--from", dest="source", type=Path, help="report a --json file's counts")
    parser.add_argument(
        "--reference", type=Path, default=REFERENCE, help="a cost result to compare with"
    )
    parser.add_argument(
        "--since", type=Path, metavar="JSON",
        help="a --json file of another environment (e.g. an older release's, made with that "
        "environment's python): each variant's difference from itself there",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="8 operations, 2 repeats, 5 warm-up")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.repeats, args.warmup = 8, 2, 5
    if args.child:
        print(json.dumps(child(args.child, args.requests, args.repeats, args.warmup)))
        return
    pairs = _pairs(args.pairs)
    extra = [n for n in args.variants.split(",") if n]
    pairs += [("context", n) for n in extra if ("context", n) not in pairs and n != "context"]
    if args.source:
        raw = json.loads(args.source.read_text())
        pairs += [("context", n) for n in raw if ("context", n) not in pairs and n != "context"]
        print(report(raw, pairs, args.reference, _since(args.since)))
        return
    raw = measure(list(_names(pairs, extra)), args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n")
    print(report(raw, pairs, args.reference, _since(args.since)))


if __name__ == "__main__":
    main()
