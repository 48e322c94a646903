"""The contract check that runs before anything is timed (like TechEmpower's verify mode).

Each check is a small function whose docstring is its label; ``CHECKS`` lists them in
order. A check talks HTTP to a running server and raises ``CheckFailed`` with the
reason. "The database is unchanged" is checked on the database itself when its URL
is known (a fingerprint of the table), otherwise through the API (probe rows before
and after, nothing may appear between them; the touched row must read the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import database, drivers
from bench.common.server import ServerError, VariantServer
from variants.settings import DatabaseUrl

BIGINT_MAX = 2**63 - 1
ISO_WITH_TZ = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class CheckFailed(AssertionError):
    pass


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Context:
    """What a check gets: a client bound to the server, and the database when known."""

    client: httpx.Client
    database: DatabaseUrl | None = None
    _probe_count: int = field(default=0, repr=False)

    def create(self, title: str = "verify", **extra: Any) -> dict[str, Any]:
        response = self.client.post("/todos", json={"title": title, **extra})
        expect_status(response, 201, f"POST /todos {title!r}")
        body: dict[str, Any] = response.json()
        return body

    def get(self, todo_id: int) -> httpx.Response:
        return self.client.get(f"/todos/{todo_id}")

    @contextlib.contextmanager
    def unchanged(self, *watched: int) -> Iterator[None]:
        """Fail if the block changed the database (or, without one, the watched rows)."""
        before = [self.get(i).json() for i in watched]
        if self.database is not None:
            fingerprint = _db_fingerprint(self.database)
            yield
            expect(_db_fingerprint(self.database) == fingerprint, "database changed")
        else:
            first = self.create("probe")["id"]
            yield
            last = self.create("probe")["id"]
            for between in range(first + 1, last):
                expect(self.get(between).status_code == 404, f"row {between} was written")
            for todo_id in (first, last):
                self.client.delete(f"/todos/{todo_id}")
        after = [self.get(i).json() for i in watched]
        expect(before == after, f"watched rows changed: {before} -> {after}")


def _db_fingerprint(url: DatabaseUrl) -> tuple[Any, ...]:
    async def query() -> tuple[Any, ...]:
        conn = await asyncpg.connect(url.asyncpg)
        try:
            row = await conn.fetchrow(
                "SELECT count(*), coalesce(max(id), 0),"
                " coalesce(sum(hashtext(id || title || done || created_at)), 0) FROM todos"
            )
            return tuple(row)
        finally:
            await conn.close()

    return asyncio.run(query())


def expect_status(response: httpx.Response, status: int | tuple[int, ...], what: str) -> None:
    wanted = status if isinstance(status, tuple) else (status,)
    expect(
        response.status_code in wanted,
        f"{what}: expected {'/'.join(map(str, wanted))}, got {response.status_code} "
        f"{response.text[:200]!r}",
    )


def expect_error(response: httpx.Response, status: int | tuple[int, ...], what: str) -> None:
    """An error status with a JSON body carrying a human-readable ``detail``."""
    expect_status(response, status, what)
    try:
        body = response.json()
    except json.JSONDecodeError:
        raise CheckFailed(f"{what}: error body is not JSON: {response.text[:200]!r}") from None
    expect(isinstance(body, dict) and body.get("detail"), f"{what}: no 'detail' in {body!r}")
    expect("Traceback" not in response.text, f"{what}: error body leaks a stack trace")


def expect_todo(body: Any, what: str) -> None:
    expect(isinstance(body, dict), f"{what}: body is not an object: {body!r}")
    expect(set(body) == {"id", "title", "done", "created_at"}, f"{what}: fields {sorted(body)}")
    expect(type(body["id"]) is int, f"{what}: id {body['id']!r} is not an integer")
    expect(isinstance(body["title"], str), f"{what}: title is not a string")
    expect(type(body["done"]) is bool, f"{what}: done {body['done']!r} is not a boolean")
    expect(ISO_WITH_TZ.match(str(body["created_at"])), f"{what}: created_at {body['created_at']!r}")


# --- the checks, in order ----------------------------------------------------------------------


def health(ctx: Context) -> None:
    """GET /health answers 200 {"status": "ok"}"""
    response = ctx.client.get("/health")
    expect_status(response, 200, "GET /health")
    expect(response.json() == {"status": "ok"}, f"GET /health body {response.text!r}")


def create(ctx: Context) -> None:
    """POST /todos creates: 201, the Todo, Location, trimmed title, done defaults to false"""
    response = ctx.client.post("/todos", json={"title": "  buy milk \n"})
    expect_status(response, 201, "POST /todos")
    body = response.json()
    expect_todo(body, "POST /todos")
    expect(body["title"] == "buy milk", f"title not trimmed: {body['title']!r}")
    expect(body["done"] is False, "done does not default to false")
    expect(response.headers.get("location") == f"/todos/{body['id']}", "Location header")
    expect(ctx.create("done already", done=True)["done"] is True, "done=true not stored")


def read_your_write(ctx: Context) -> None:
    """a 2xx write is visible on the next read (POST, PATCH, DELETE)"""
    todo = ctx.create("visible")
    response = ctx.get(todo["id"])
    expect_status(response, 200, "GET after POST")
    expect(response.json() == todo, f"GET after POST: {response.json()} != {todo}")
    patched = ctx.client.patch(f"/todos/{todo['id']}", json={"done": True}).json()
    expect(ctx.get(todo["id"]).json() == patched, "GET after PATCH does not see the change")
    ctx.client.delete(f"/todos/{todo['id']}")
    expect(ctx.get(todo["id"]).status_code == 404, "GET after DELETE still finds the todo")


def unicode_titles(ctx: Context) -> None:
    """any Unicode title round-trips; 200 characters is the limit after trimming"""
    for title in ["ünïcödé ✓ 日本語 עברית 🎉👩‍👩‍👧", "x" * 200, " " + "é" * 200 + " ", "a\tb"]:
        todo = ctx.create(title)
        expect(todo["title"] == title.strip(), f"title {title[:20]!r}… stored as {todo['title']!r}")
        read = ctx.get(todo["id"])
        expect_status(read, 200, "GET after POST")
        expect(read.json()["title"] == title.strip(), "title changed on read")


def get_one(ctx: Context) -> None:
    """GET /todos/{id}: 200 for a seeded id, 404 for a well-formed unknown id"""
    response = ctx.get(1)
    expect_status(response, 200, "GET /todos/1")
    expect_todo(response.json(), "GET /todos/1")
    for unknown in (0, BIGINT_MAX):
        expect_error(ctx.get(unknown), 404, f"GET /todos/{unknown}")


def bad_ids(ctx: Context) -> None:
    """non-integer, negative and out-of-64-bit-range ids are 422 on every id route"""
    for bad in ("abc", "-1", "1.5", str(BIGINT_MAX + 1), "1e3", "99999999999999999999999"):
        expect_error(ctx.client.get(f"/todos/{bad}"), 422, f"GET /todos/{bad}")
        expect_error(ctx.client.get(f"/todos/{bad}/multi"), 422, f"GET /todos/{bad}/multi")
        with ctx.unchanged():
            response = ctx.client.patch(f"/todos/{bad}", json={"done": True})
            expect_error(response, 422, f"PATCH /todos/{bad}")
            expect_error(ctx.client.delete(f"/todos/{bad}"), 422, f"DELETE /todos/{bad}")


def list_default(ctx: Context) -> None:
    """GET /todos returns 20 Todos ordered by id"""
    response = ctx.client.get("/todos")
    expect_status(response, 200, "GET /todos")
    body = response.json()
    expect(isinstance(body, list) and len(body) == 20, f"expected 20 todos, got {len(body)}")
    for todo in body:
        expect_todo(todo, "GET /todos item")
    ids = [todo["id"] for todo in body]
    expect(ids == sorted(ids) and len(set(ids)) == len(ids), f"not ordered by id: {ids}")


def list_paging(ctx: Context) -> None:
    """limit and offset page through the ordered list; limit 1 and 100 are allowed"""
    page = [t["id"] for t in ctx.client.get("/todos", params={"limit": 10}).json()]
    window = [t["id"] for t in ctx.client.get("/todos", params={"limit": 4, "offset": 3}).json()]
    expect(window == page[3:7], f"offset 3 limit 4 gave {window}, expected {page[3:7]}")
    expect(len(ctx.client.get("/todos", params={"limit": 1}).json()) == 1, "limit=1")
    expect(len(ctx.client.get("/todos", params={"limit": 100}).json()) == 100, "limit=100")
    far = ctx.client.get("/todos", params={"offset": BIGINT_MAX})
    expect_status(far, 200, "offset=2^63-1")
    expect(far.json() == [], "a huge offset returns an empty list")


def list_bounds(ctx: Context) -> None:
    """limit outside 1..100 and offset < 0 or beyond 64 bits are 422"""
    for params in (
        {"limit": 0}, {"limit": 101}, {"limit": -1}, {"limit": "abc"},
        {"offset": -1}, {"offset": BIGINT_MAX + 1}, {"offset": "x"},
    ):  # fmt: skip
        expect_error(ctx.client.get("/todos", params=params), 422, f"GET /todos {params}")


def patch(ctx: Context) -> None:
    """PATCH /todos/{id} updates any of title and done and returns the Todo"""
    todo = ctx.create("before")
    response = ctx.client.patch(f"/todos/{todo['id']}", json={"title": " after "})
    expect_status(response, 200, "PATCH title")
    body = response.json()
    expect_todo(body, "PATCH")
    expected = {**todo, "title": "after"}
    expect(body == expected, f"PATCH title: {body} != {expected}")
    response = ctx.client.patch(f"/todos/{todo['id']}", json={"done": True, "title": "both"})
    expect(response.json() == {**todo, "title": "both", "done": True}, "PATCH title+done")
    unknown = ctx.client.patch(f"/todos/{BIGINT_MAX}", json={"done": True})
    expect_error(unknown, 404, "PATCH unknown")


def patch_rejects(ctx: Context) -> None:
    """PATCH with an invalid body is 422 and changes nothing"""
    todo = ctx.create("untouched")
    with ctx.unchanged(todo["id"]):
        body: Any
    for body in (
            {}, {"title": None}, {"done": None}, {"title": ""}, {"title": "   "}, {"title": 5},
            {"done": "yes"}, {"done": 1}, {"title": "ok", "extra": 1}, {"id": 7}, [], "done",
            {"title": "x" * 201},
        ):  # fmt: skip
        response = ctx.client.patch(f"/todos/{todo['id']}", json=body)
        expect_error(response, 422, f"PATCH {json.dumps(body)[:40]}")


def create_rejects(ctx: Context) -> None:
    """POST with an invalid body is 422 with a readable detail and writes nothing"""
    bodies: list[Any] = [
        {}, {"title": ""}, {"title": "   \n\t"}, {"title": "x" * 201}, {"title": 1},
        {"title": None}, {"title": ["a"]}, {"title": "ok", "done": "true"},
        {"title": "ok", "done": 0},
        {"title": "ok", "unknown": 1}, {"title": "ok", "id": 5}, ["title"], "title", 1, None,
        {"title": "nul \x00 inside"}, {"title": "\ud800 lone surrogate"},
    ]  # fmt: skip
    with ctx.unchanged():
        for body in bodies:
            response = ctx.client.post(
                "/todos",
                content=json.dumps(body),
                headers={"content-type": "application/json"},
            )
            expect_error(response, 422, f"POST {json.dumps(body)[:40]}")
        for raw in (b"not json", b'{"title": "unterminated', b"", b"\xff\xfe"):
            response = ctx.client.post(
                "/todos", content=raw, headers={"content-type": "application/json"}
            )
            expect_error(response, 422, f"POST raw {raw[:20]!r}")


def body_limit(ctx: Context) -> None:
    """request bodies over 64 KiB are refused (413 or 422) and write nothing"""
    todo = ctx.create("small")
    big = json.dumps({"title": "x" * (70 * 1024)})
    with ctx.unchanged(todo["id"]):
        response = ctx.client.post(
            "/todos", content=big, headers={"content-type": "application/json"}
        )
        expect_error(response, (413, 422), "POST 70 KiB")
        response = ctx.client.patch(
            f"/todos/{todo['id']}", content=big, headers={"content-type": "application/json"}
        )
        expect_error(response, (413, 422), "PATCH 70 KiB")
        chunked = ctx.client.post(
            "/todos",
            content=iter([big[i : i + 8192].encode() for i in range(0, len(big), 8192)]),
            headers={"content-type": "application/json"},
        )
        expect_error(chunked, (413, 422), "POST 70 KiB chunked")


def delete(ctx: Context) -> None:
    """DELETE /todos/{id}: 204 with an empty body, then 404"""
    todo = ctx.create("doomed")
    response = ctx.client.delete(f"/todos/{todo['id']}")
    expect_status(response, 204, "DELETE")
    expect(response.content == b"", f"DELETE body {response.content[:50]!r}")
    expect_error(ctx.client.delete(f"/todos/{todo['id']}"), 404, "DELETE again")
    expect_error(ctx.get(todo["id"]), 404, "GET deleted")


def multi(ctx: Context) -> None:
    """GET /todos/{id}/multi?queries=N: ids id..id+N-1 that exist, in order, N clamped to 1..20"""

    def ids(first: int, queries: Any = None) -> list[int]:
        params = {} if queries is None else {"queries": queries}
        response = ctx.client.get(f"/todos/{first}/multi", params=params)
        expect_status(response, 200, f"multi {first} queries={queries}")
        for todo in response.json():
            expect_todo(todo, "multi item")
        return [todo["id"] for todo in response.json()]

    expect(ids(10, 5) == [10, 11, 12, 13, 14], f"queries=5 gave {ids(10, 5)}")
    expect(ids(10) == [10], "no queries → 1")
    expect(ids(10, 0) == [10], "queries=0 → 1")
    expect(ids(10, -3) == [10], "queries=-3 → 1")
    expect(ids(10, "abc") == [10], "queries=abc → 1")
    expect(ids(10, 500) == list(range(10, 30)), "queries=500 → 20")
    first, gap, last = (ctx.create(f"multi {n}")["id"] for n in range(3))
    ctx.client.delete(f"/todos/{gap}")
    expect(ids(first, last - first + 1) == [first, last], f"deleted id {gap} is not skipped")
    expect(ids(BIGINT_MAX - 1, 20) == [], "ids past the 64-bit range are skipped")


Check = Callable[[Context], None]
CHECKS: list[Check] = [
    health, create, read_your_write, unicode_titles, get_one, bad_ids, list_default,
    list_paging, list_bounds, patch, patch_rejects, create_rejects, body_limit, delete, multi,
]  # fmt: skip


def label(check: Check) -> str:
    return (check.__doc__ or check.__name__).strip().splitlines()[0]


@dataclass(frozen=True)
class Outcome:
    check: str
    label: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_check(check: Check, ctx: Context) -> Outcome:
    try:
        check(ctx)
    except CheckFailed as exc:
        return Outcome(check.__name__, label(check), str(exc))
    except httpx.HTTPError as exc:
        return Outcome(check.__name__, label(check), f"{type(exc).__name__}: {exc}")
    return Outcome(check.__name__, label(check), None)


def verify(
    base_url: str,
    *,
    database: DatabaseUrl | None = None,
    report: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every check against *base_url*; *report* sees each outcome as it comes."""
    outcomes = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        ctx = Context(client, database)
        for check in CHECKS:
            outcome = run_check(check, ctx)
            outcomes.append(outcome)
            if report:
                report(outcome)
    return outcomes


def _print_outcome(prefix: str) -> Callable[[Outcome], None]:
    def report(outcome: Outcome) -> None:
        status = "PASS" if outcome.ok else "FAIL"
        line = f"{status}  {prefix}{outcome.check:<16} {outcome.label}"
        print(line if outcome.ok else f"{line}\n      -> {outcome.error}", flush=True)

    return report


def run_verify(*, url: str | None, names: list[str], driver: str | None = None) -> int:
    """``sessionbench verify``: check a running server, or start and check each variant."""
    raw_db = os.environ.get("DATABASE_URL")
    if url is not None:
        outcomes = verify(url, database=DatabaseUrl.parse(raw_db) if raw_db else None,
                          report=_print_outcome(""))  # fmt: skip
        failed = sum(not o.ok for o in outcomes)
        print(f"{len(outcomes) - failed} passed, {failed} failed")
        return 1 if failed else 0
    failures: list[str] = []
    passed = 0
    with (
        database.terminate_on_sigterm(),
        database.database_url_or_embedded() as (db, _),
        tempfile.TemporaryDirectory(prefix="sessionbench-verify-") as logs,
    ):
        asyncio.run(database.ensure_schema(db))
        for name in names:
            server = VariantServer(
                name, db, log_path=Path(logs) / f"{name}.log",
                env=drivers.server_env(name, driver),
            )  # fmt: skip
            try:
                server.start()
            except ServerError as exc:
                print(f"FAIL  {name:<8} start-up\n      -> {exc}", flush=True)
                failures.append(f"{name}:start-up")
                continue
            try:
                report = _print_outcome(f"{name:<8} ")
                for outcome in verify(server.base_url, database=db, report=report):
                    passed += outcome.ok
                    if not outcome.ok:
                        failures.append(f"{name}:{outcome.check}")
            finally:
                server.stop()
    print(f"{passed} passed, {len(failures)} failed" + (": " if failures else ""), *failures)
    return 1 if failures else 0
