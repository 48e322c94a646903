"""``python -m bench.cost.operations_hook``: the micro-benchmarks' operations, run on command.

The process ``bench.cost.operations`` starts under callgrind. It imports the operation
functions the micro-benchmarks time (``bench.common.micro_ops``: strategies × uses, ASGI
calls of the machinery apps), answers ``ready`` on stdout, then reads one command per line
on stdin and answers one line each:

- ``run GROUP NAME N``: the operation N times, one after the other, in one
  ``run_until_complete`` of its uvloop event loop (as ``bench/micro``'s batches) → ``done``;
- ``check GROUP NAME``: one operation checked as its micro-benchmark checks it → ``checked``;
- ``gc``: ``gc.collect()`` → ``collected``.

A failing command answers ``error MESSAGE``; end of input ends the process. The variant
modules read ``DATABASE_URL`` (and the pool and driver settings) from the environment.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.common import micro_ops

GROUP_USE = {"session-lifecycle": "lifecycle", "session-select1": "select1", "session-get": "get"}
"""Session groups → the use (``micro_ops.USES``) their operations make of the session."""
GROUPS = (*GROUP_USE, "machinery")  # bench.cost.results.OPERATION_GROUPS: the tables' order
FLOORS = micro_ops.FLOORS
"""The floor of each kind of group (no strategy around the session / no session at all)."""

Op = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    group: str
    name: str
    """The variant's name (session groups) or the machinery's (``micro_ops.machinery()``)."""
    variant: str
    """The row's variant: the strategy's, or ``bare`` / ``plain`` for the floors."""
    label: str


def catalogue() -> list[Operation]:
    """Every operation of every group, in group order."""
    sessions = micro_ops.session_names()
    out = [
        Operation(group, name, name, micro_ops.strategy_label(name))
        for group in GROUP_USE
        for name in sessions
    ]
    out += [
        Operation("machinery", name, variant, micro_ops.label(name))
        for name, variant in micro_ops.machinery().items()
    ]
    return out


class Operations:
    """The callable of every operation, built once (machinery apps included)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.statuses: list[int] = []
        self.ops: dict[tuple[str, str], Op] = {}
        for op in catalogue():
            if op.group in GROUP_USE:
                use = micro_ops.USES[GROUP_USE[op.group]]
                self.ops[op.group, op.name] = _bound(micro_ops.strategy(op.name), use)
            else:
                app = micro_ops.build(op.name)
                self.ops[op.group, op.name] = micro_ops.asgi_call(app, self.statuses)

    def run(self, group: str, name: str, n: int) -> None:
        op = self.ops[group, name]

        async def many() -> None:  # bench/micro/conftest.py's batch
            for _ in range(n):
                await op()

        self.loop.run_until_complete(many())
        self.statuses.clear()

    def check(self, group: str, name: str) -> None:
        """One operation, checked as its micro-benchmark checks it (AssertionError if not)."""
        if group in GROUP_USE:
            micro_ops.check_strategy(micro_ops.strategy(name), GROUP_USE[group], self.loop)
            return
        self.statuses.clear()
        self.loop.run_until_complete(self.ops[group, name]())
        if self.statuses != [200]:
            raise AssertionError(f"the ASGI call answered {self.statuses}, not [200]")
        self.statuses.clear()


def _bound(strategy: micro_ops.Strategy, use: micro_ops.Use) -> Op:
    """``strategy(use)`` as a no-argument operation, as ``bench/micro/test_session.py`` times it."""
    return lambda: strategy(use)


def answer(command: list[str], operations: Operations) -> str:
    match command:
        case ["run", group, name, n]:
            operations.run(group, name, int(n))
            return "done"
        case ["check", group, name]:
            operations.check(group, name)
            return "checked"
        case ["gc"]:
            gc.collect()
            return "collected"
    return f"error unknown command {' '.join(command)!r}"


def main() -> None:
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    operations = Operations(loop)
    # Imports and apps frozen out of the collector: the ``gc`` before each repeat (and any
    # full collection inside one) then walks what the operations made, not every module.
    gc.collect()
    gc.freeze()
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            reply = answer(line.split(), operations)
        except Exception as exc:  # the controller reports it; the process serves on
            reply = f"error {type(exc).__name__}: {exc}".replace("\n", " ")
        print(reply, flush=True)
    from variants.engine import engine

    loop.run_until_complete(engine.dispose())
    loop.close()


if __name__ == "__main__":
    main()
