"""The engine's pool class: SQLAlchemy's async queue, a FIFO hand-off queue or a hybrid.

``SESSIONBENCH_POOL_QUEUE`` (``Settings.pool_queue``) picks the queue under
``AsyncAdaptedQueuePool``; every ORM variant gets it by configuration only
(``variants/engine.py``, and ``variants/fastapi_sqla.py`` for its own engine).

- ``sqlalchemy``: the stock ``AsyncAdaptedQueue``. Its ``get`` takes a free connection
  with ``get_nowait()`` before it waits, so a newcomer takes a returned connection ahead
  of checkouts already queued (barging); ``asyncio.Queue.get`` puts a waiter that was
  woken but found the queue empty again at the *end* of its waiters.
- ``fifo``: a returned connection goes straight to the longest waiter (hand-off); a
  newcomer takes a free connection only when nobody waits.
- ``hybrid``: in the spirit of Go's ``sync.Mutex`` starvation mode: newcomers may barge
  (a returned connection is put back and the oldest waiter only woken) until the oldest
  waiter has waited ``HYBRID_THRESHOLD``; from then on returns are handed off in order.
  A woken waiter that lost the race keeps its place at the front.

With ``SESSIONBENCH_POOL_STATS`` set, the queue also times every checkout and check-in
(``variants/pool_stats.py``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import Any

from sqlalchemy.dialects import plugins
from sqlalchemy.engine import URL, CreateEnginePlugin
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import queue as sqla_queue

try:  # SQLAlchemy 2.1's name
    from sqlalchemy.util.concurrency import await_
except ImportError:  # SQLAlchemy 2.0 (`sessionbench history`): the same function, older name
    from sqlalchemy.util.concurrency import await_only as await_

from variants.pool_stats import STATS, PoolStats
from variants.settings import POOL_QUEUES as QUEUES

PLUGIN = "sessionbench_pool"
"""Engine plugin name: ``?plugin=sessionbench_pool`` in a URL picks the pool class below."""

HYBRID_THRESHOLD = 0.005
"""Seconds the oldest waiter may wait before returns are handed off in order (see README)."""

_WAKE = object()  # hybrid: "try again", not a connection


class _Waiter:
    __slots__ = ("future", "since")

    def __init__(self, future: asyncio.Future[Any], since: float) -> None:
        self.future = future
        self.since = since


class HandOffQueue(sqla_queue.QueueCommon[Any]):
    """FIFO hand-off: ``put`` gives the item to the longest waiter; no newcomer overtakes one."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[Any] = deque()
        self._waiters: deque[_Waiter] = deque()
        self._woken = 0  # hybrid: waiters woken to try again whose task has not run yet

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return self.maxsize > 0 and len(self._items) >= self.maxsize

    def qsize(self) -> int:
        return len(self._items)

    def waiters(self) -> int:
        return sum(not w.future.done() for w in self._waiters)

    def unserved(self) -> bool:
        """A checkout is waiting that has not been given an item: one in line, or (hybrid)
        one woken to try again. A waiter handed an item is served, though its task may not
        have run yet: a returned item that then finds nobody in line is free to take."""
        return self._woken > 0 or any(not w.future.done() for w in self._waiters)

    def _take(self) -> Any:
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def _may_take_now(self) -> bool:
        return bool(self._items) and not self._waiters

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(item)
                return
        if self.full():
            raise sqla_queue.Full()
        self._items.append(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._may_take_now():
            raise sqla_queue.Empty()
        return self._take()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self._may_take_now() or not block:
            return self.get_nowait()
        return await_(self._wait(timeout))

    async def _wait(self, limit: float | None) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit  # one timeout, not per wake
        waiter = _Waiter(loop.create_future(), time.monotonic())
        self._waiters.append(waiter)
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    result = await waiter.future
            except BaseException as exc:
                item = self._give_up(waiter)
                if isinstance(exc, TimeoutError):
                    if item is not _WAKE:
                        return item  # handed over just as the timeout fired: keep it
                    raise sqla_queue.Empty() from None
                if item is not _WAKE:
                    self.put_nowait(item)  # cancelled after the hand-off: pass it on
                raise
            if result is not _WAKE:
                return result
            self._woken -= 1
            if self._items:  # hybrid: woken, and the item is still there
                return self._take()
            # Lost the race to a newcomer: back to the *front*, original age kept.
            waiter.future = loop.create_future()
            self._waiters.appendleft(waiter)

    def _give_up(self, waiter: _Waiter) -> Any:
        """Leave the line; the item already handed to *waiter*, else ``_WAKE``."""
        future = waiter.future
        if future.done() and not future.cancelled():
            if future.result() is not _WAKE:
                return future.result()
            self._woken -= 1
            if self._items:  # hybrid: a wake-up we will not use goes to the next in line
                self._wake_next()
            return _WAKE
        future.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        return _WAKE

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(_WAKE)
                self._woken += 1
                return


class HybridQueue(HandOffQueue):
    """Barging allowed until the oldest waiter has waited ``threshold`` s; then hand-off."""

    threshold = HYBRID_THRESHOLD

    def _starving(self) -> bool:
        while self._waiters and self._waiters[0].future.done():
            self._waiters.popleft()
        return bool(self._waiters) and (time.monotonic() - self._waiters[0].since >= self.threshold)

    def _may_take_now(self) -> bool:
        return bool(self._items) and not self._starving()

    def put_nowait(self, item: Any) -> None:
        if self._starving():
            super().put_nowait(item)  # hand-off to the oldest
            return
        if self.full():
            raise sqla_queue.Full()
        self._items.append(item)
        self._wake_next()  # the oldest may take it, unless a newcomer does first


class _Timed:
    """Mixin timing every checkout/check-in of the queue it precedes into ``STATS``."""

    _stats: PoolStats

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        stats = self._stats
        asked = time.perf_counter_ns()
        barged = self.qsize() > 0 and self._unserved()  # type: ignore[attr-defined]
        stats.waiting += 1
        try:
            item = super().get(block, timeout)  # type: ignore[misc]
        finally:
            stats.waiting -= 1
        stats.checked_out(item, asked, barged=barged)
        return item

    def _unserved(self) -> bool:
        """Another checkout waits that has not been given a connection: a free one taken now
        is taken ahead of it (barging). ``stats.waiting`` counts every checkout inside ``get``,
        also one a hand-off queue has already handed a connection to (its task has not run
        yet); counted as waiting, it made a newcomer taking the *next* returned connection
        look like barging on the FIFO queue."""
        if isinstance(self, HandOffQueue):
            return self.unserved()
        return self._stats.waiting > 0  # asyncio.Queue: a woken getter takes its item itself

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._stats.checked_in(item)
        super().put(item, block, timeout)  # type: ignore[misc]


_BASES: dict[str, type[sqla_queue.QueueCommon[Any]]] = {
    "sqlalchemy": sqla_queue.AsyncAdaptedQueue,
    "fifo": HandOffQueue,
    "hybrid": HybridQueue,
}


def queue_class(name: str, stats: PoolStats | None = STATS) -> type[sqla_queue.QueueCommon[Any]]:
    """The queue class for *name*, timed into *stats* when given."""
    if name not in _BASES:
        raise ValueError(f"pool queue {name!r} is not one of {', '.join(QUEUES)}")
    base = _BASES[name]
    if stats is None:
        return base
    return type(f"Timed{base.__name__}", (_Timed, base), {"_stats": stats})


def pool_class(name: str, stats: PoolStats | None = STATS) -> type[AsyncAdaptedQueuePool]:
    """``AsyncAdaptedQueuePool`` with the queue *name* (pass it as ``poolclass=``)."""
    queue = queue_class(name, stats)
    if queue is sqla_queue.AsyncAdaptedQueue:
        return AsyncAdaptedQueuePool
    return type(f"{queue.__name__}Pool", (AsyncAdaptedQueuePool,), {"_queue_class": queue})


class PoolQueuePlugin(CreateEnginePlugin):
    """Engine plugin (URL ``?plugin=sessionbench_pool``) setting ``poolclass`` from the settings.

    For engines this code does not create itself: fastapi-sqla builds its engine from
    environment variables, which can name a URL but not a pool class.
    """

    def __init__(self, url: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(url, kwargs)
        kwargs.setdefault(
            "poolclass", pool_class(os.environ.get("SESSIONBENCH_POOL_QUEUE", "sqlalchemy"))
        )

    def update_url(self, url: URL) -> URL:
        return url  # the plugin takes no URL parameters of its own


plugins.register(PLUGIN, __name__, "PoolQueuePlugin")
