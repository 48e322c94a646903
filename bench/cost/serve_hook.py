"""``python -m bench.cost.serve_hook VARIANT PORT ACK``: ``sessionbench serve`` plus one hook.

On SIGUSR1 the server runs a full ``gc.collect()`` and then appends a line to the file
*ACK*. The cost runner sends it before zeroing the counters of each repeat, so every
repeat starts from the same garbage-collector state: the same requests then trigger the
same collections, and a full collection (millions of instructions) cannot land in one
repeat and not in another.

uvicorn's main loop wakes every 0.1 s (to refresh the Date header each second and to
notice a shutdown): work per wall-clock second, not per request, and under valgrind a
request lasts tens of milliseconds, so those wake-ups would count a few percent into
every request and vary with the machine's speed. Here the loop wakes once a day, so
the Date header keeps its start-up value (no client of this hook reads it). It once
woke every minute, but a variant's server often lives past a minute on a busy machine,
and one tick landing in the warm-up or the repeats moved every repeat of GET by up to
0.8 % (callgrind: the type attribute cache's misses in ``_PyType_Lookup``, whose
collisions follow the allocations and version tags before them), so two runs of the
same code disagreed while the repeats within each agreed. A shutdown (SIGINT) is still
noticed at once: uvicorn's exit handler also wakes the sleeping loop. And uvicorn closes a
keep-alive connection idle for 5 s: between two repeats (collection, zeroing, dump under
valgrind) that can happen, and the next repeat would count the reconnection; here the keep-alive
lasts an hour.
Everything else is exactly ``bench.common.server.serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import sys
from pathlib import Path

import uvicorn
import uvicorn.server

KEEP_ALIVE = 3600  # s


TICK = 86400.0  # s between two wake-ups of the main loop: none in a run
_handle_exit = uvicorn.server.Server.handle_exit


def _handle_exit_and_wake(self: uvicorn.server.Server, sig: int, frame: object) -> None:
    _handle_exit(self, sig, frame)  # type: ignore[arg-type]
    wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = getattr(self, "_wake", None)
    if wake is not None:
        wake[0].call_soon_threadsafe(wake[1].set)


async def _main_loop(self: uvicorn.server.Server) -> None:
    wake = asyncio.Event()
    self._wake = (asyncio.get_running_loop(), wake)  # type: ignore[attr-defined]
    counter = 0
    should_exit = await self.on_tick(counter)
    while not should_exit:
        counter = (counter + 10) % 864000  # on_tick refreshes the Date header every 10 counts
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), TICK)
        should_exit = await self.on_tick(counter)


def main(argv: list[str]) -> None:
    name, port, ack = argv[0], int(argv[1]), Path(argv[2])

    def collect(signum: int, frame: object) -> None:
        gc.collect()
        with ack.open("a") as out:
            out.write("collected\n")

    signal.signal(signal.SIGUSR1, collect)
    uvicorn.server.Server.main_loop = _main_loop  # type: ignore[method-assign]
    uvicorn.server.Server.handle_exit = _handle_exit_and_wake  # type: ignore[method-assign]
    uvicorn.run = functools.partial(uvicorn.run, timeout_keep_alive=KEEP_ALIVE)
    from bench.common.server import serve

    serve(name, port=port)


if __name__ == "__main__":
    main(sys.argv[1:])
