"""``bench.cost.client`` and the lockstep of ``bench.cost.endpoints``: one write per request,
bursts written while the server is held, idleness read from /proc, ids rewound."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.common import database
from bench.common.processes import Interrupted
from bench.cost.client import Connection, Lockstep, ProtocolError
from bench.cost.endpoints import Server
from variants.settings import DatabaseUrl

ANSWER = b'HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{"id":7}'


def test_a_request_with_a_body_reaches_the_server_in_its_first_read() -> None:
    reads: list[bytes] = []

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(2):
                reads.append(await reader.read(65536))
                writer.write(ANSWER)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = Connection("127.0.0.1", port, timeout=5)
        first = await connection.post("/todos", json={"title": "x" * 2000})
        second = await connection.patch("/todos/7", json={"done": True})
        await connection.close()
        server.close()
        assert (first.status_code, first.json(), second.method) == (201, {"id": 7}, "PATCH")

    asyncio.run(main())
    assert len(reads) == 2
    head, _, body = reads[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /todos HTTP/1.1\r\n")
    assert b"Content-Length: 2012" in head and len(body) == 2012  # all of it, at once


def test_a_closed_connection_is_a_protocol_error() -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        connection = Connection("127.0.0.1", server.sockets[0].getsockname()[1], timeout=5)
        with pytest.raises(ProtocolError, match="GET /health: connection closed"):
            await connection.get("/health")
        server.close()

    asyncio.run(main())


def test_lockstep_writes_each_burst_between_hold_and_release() -> None:
    events: list[str] = []

    async def settle() -> None:
        events.append("settled")

    async def member(lockstep: Lockstep, name: str, requests: int) -> None:
        for n in range(requests):
            await lockstep.send(lambda n=n: events.append(f"{name}{n}"))
            await asyncio.sleep(0)  # the answer
        await lockstep.leave()

    async def main() -> None:
        lockstep = Lockstep(
            3, settle, hold=lambda: events.append("hold"), release=lambda: events.append("go")
        )
        await asyncio.gather(member(lockstep, "a", 2), member(lockstep, "b", 1),
                             member(lockstep, "c", 2))  # fmt: skip

    asyncio.run(main())
    bursts = [set(b.strip(",").split(",")) for b in ",".join(events).split("go") if b.strip(",")]
    assert bursts == [{"settled", "hold", "a0", "b0", "c0"}, {"settled", "hold", "a1", "c1"}]
    assert events[:2] == ["settled", "hold"] and events[-1] == "go"


@pytest.fixture
def dead() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_burst_to_a_server_that_died_fails_as_its_request(dead: int) -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(65536)
            writer.close()  # what the dead server's socket does

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        connection = Connection("127.0.0.1", server.sockets[0].getsockname()[1], timeout=5)
        connection.lockstep = Server(dead, timeout=0.1).lockstep(1)
        with pytest.raises(ProtocolError, match="connection closed"):
            await connection.get("/health")
        server.close()

    asyncio.run(main())


def test_an_interruption_during_a_burst_to_a_dead_server_stays_an_interruption(
    dead: int,
) -> None:
    def write() -> None:
        raise Interrupted("SIGINT")  # Ctrl-C while the burst is written

    async def main() -> None:
        await Server(dead, timeout=0.1).lockstep(1).send(write)

    with pytest.raises(Interrupted, match="SIGINT"):
        asyncio.run(main())


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import select, sys; print(flush=True); select.epoll().poll(60)"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline()
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def spinner() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "print(flush=True)\nwhile True: pass"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline()
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_server_in_epoll_wait_is_idle_and_a_busy_one_is_not(sleeper: int, spinner: int) -> None:
    asyncio.run(asyncio.sleep(0.2))  # the sleeper reaches its epoll_wait
    assert Server(sleeper).idle()
    assert not any(Server(spinner).idle() for _ in range(5))
    busy = Server(spinner, timeout=0.1)
    asyncio.run(busy.wait_idle())  # gives up after its timeout instead of hanging


def test_a_server_is_not_idle_while_a_backend_it_waits_for_works(
    sleeper: int, spinner: int
) -> None:
    asyncio.run(asyncio.sleep(0.2))
    assert Server(sleeper, backends=(sleeper,)).idle()
    assert not any(Server(sleeper, backends=(spinner,)).idle() for _ in range(5))


def test_the_watched_backends_are_the_database_s_others(db: DatabaseUrl) -> None:
    async def main() -> tuple[tuple[int, ...], int, int]:
        mine, other = await database.connect(db), await database.connect(db)
        try:
            server = Server(os.getpid())
            await server.watch_backends(mine)
            own = await mine.fetchval("SELECT pg_backend_pid()")
            theirs = await other.fetchval("SELECT pg_backend_pid()")
            return server.backends, own, theirs
        finally:
            await mine.close()
            await other.close()

    backends, own, theirs = asyncio.run(main())
    assert theirs in backends
    assert own not in backends


def test_rewound_ids_repeat_after_a_write_cycle(db: DatabaseUrl) -> None:
    async def cycle(conn) -> list[int]:  # type: ignore[no-untyped-def]
        await database.rewind_ids(conn)
        ids = [await conn.fetchval("INSERT INTO todos (title) VALUES ('x') RETURNING id")
               for _ in range(3)]  # fmt: skip
        await conn.execute("DELETE FROM todos WHERE id = ANY($1::int[])", ids)
        return ids

    async def main() -> tuple[list[int], list[int]]:
        conn = await database.connect(db)
        try:
            return await cycle(conn), await cycle(conn)
        finally:
            await conn.close()

    first, second = asyncio.run(main())
    assert first == second and first[0] > 1
