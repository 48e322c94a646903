"""A minimal HTTP/1.1 keep-alive client for ``sessionbench cost``: each request in one write.

httpx (h11) writes a request's head and its body separately. Whether the server's first
read sees both depends on timing, and when it does not, the server pays an extra event-loop
turn, an extra ``data_received`` and an ASGI ``receive`` wait for that request. Counted
with cProfile in the server: 107 to 123 reads for the same 96 write-cycle requests in three
repeats, which moved the write rows' instruction counts by up to 0.46 %. Sent in one write,
every repeat's requests reach the server the same way. Only what the cost endpoints need:
a JSON body, ``Content-Length`` responses, one connection per simulated client.

``Lockstep`` sends the next request of every connection of a group together: it waits
until each connection has its next request ready, then until the server is idle (its
``settle`` coroutine: see ``bench.cost.endpoints.Server``), stops the server (SIGSTOP),
writes them all, and lets it go on (SIGCONT). The server then finds the whole burst in one poll. A
request that instead arrives while the server still runs (after one response, before the
next poll) or one poll later costs it extra event-loop turns: measured under callgrind,
that moved instructions per request by 0.1–0.3 % from repeat to repeat at one client, and
by 0.6–1.3 % at sixteen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class ProtocolError(RuntimeError):
    """The server's answer is not an HTTP/1.1 response this client can read."""


@dataclass(frozen=True)
class Response:
    method: str
    path: str
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Lockstep:
    """The next request of *members* connections, sent in one burst to a stopped server."""

    def __init__(
        self,
        members: int,
        settle: Callable[[], Awaitable[None]],
        hold: Callable[[], None],
        release: Callable[[], None],
    ) -> None:
        self.members = members
        self.settle = settle
        self.hold = hold
        self.release = release
        self._writes: list[Callable[[], None]] = []
        self._burst: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(self, write: Callable[[], None]) -> None:
        """Queue *write*; return once it has been written with the rest of its burst."""
        burst = self._burst
        self._writes.append(write)
        if len(self._writes) >= self.members:
            await self._fire()
        await burst

    async def leave(self) -> None:
        """A member has no more requests: the others no longer wait for it."""
        self.members -= 1
        if self._writes and len(self._writes) >= self.members:
            await self._fire()

    async def _fire(self) -> None:
        writes, burst = self._writes, self._burst
        self._writes = []
        self._burst = asyncio.get_running_loop().create_future()
        try:
            await self.settle()
            self.hold()
            try:
                for write in writes:
                    write()
            finally:
                self.release()
        except BaseException as exc:
            burst.set_exception(exc)
            # retrieved: the member that fires raises it itself, and no other member may be
            # waiting (asyncio would log "Future exception was never retrieved")
            burst.exception()
            raise
        burst.set_result(None)


class Connection:
    """One keep-alive connection to ``host:port``; requests on it go one at a time, through
    ``lockstep`` when one is set."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.lockstep: Lockstep | None = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            try:
                self._streams = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise ProtocolError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return self._streams

    async def request(self, method: str, path: str, body: Any = None) -> Response:
        reader, writer = await self._open()
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        data = head.encode() + b"\r\n" + payload
        if self.lockstep is None:
            writer.write(data)
        else:
            await self.lockstep.send(lambda: writer.write(data))
        try:
            return await asyncio.wait_for(self._read(reader, method, path), self.timeout)
        except TimeoutError:
            await self.close()
            raise ProtocolError(f"{method} {path}: no answer in {self.timeout:.0f} s") from None

    async def _read(self, reader: asyncio.StreamReader, method: str, path: str) -> Response:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ProtocolError(f"{method} {path}: connection closed ({exc})") from None
        status_line, *lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"{method} {path}: bad status line {status_line!r}")
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in lines if line)
        )
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ProtocolError(f"{method} {path}: chunked responses are not supported")
        length = int(headers.get("content-length", "0"))
        content = await reader.readexactly(length) if length else b""
        return Response(method, path, int(parts[1]), content)

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def post(self, path: str, json: Any) -> Response:
        return await self.request("POST", path, json)

    async def patch(self, path: str, json: Any) -> Response:
        return await self.request("PATCH", path, json)

    async def delete(self, path: str) -> Response:
        return await self.request("DELETE", path)

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
