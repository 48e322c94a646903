"""One run's life, the same for ``run``, ``pitfalls`` and ``cost``: signals, create, finish.

A runner wraps its work in :class:`RunLifecycle` and sets ``status`` when the work is done::

    with RunLifecycle(Run, out, settings=..., fails_on=(DatabaseError,)) as life:
        with database_url_or_embedded() as (url, _), stopping(stop_children):
            life.status = work(life.run, url)
    return life.run

- **Start.** SIGINT and SIGTERM raise :class:`~bench.common.processes.Interrupted` (the
  handlers in place before come back at the end). The result file is created in the run
  folder (``Run.create``: status ``running``, ``started``) with the environment of
  :func:`bench.common.results.environment`: machine, packages and the provenance
  ``git_commit`` / ``git_dirty`` (what ``bench/common/provenance.py`` checks for the
  reference), plus the runner's own entries (``env``).
- **Children.** :func:`stopping` runs the runner's cleanup with both signals ignored, so a
  second Ctrl-C cannot cut it short and leave servers or locust behind.
- **Finish.** The file gets its ``status`` and ``finished`` time and is saved; what the
  runner saved before (cells, rows) stays. Ctrl-C or SIGTERM: ``incomplete`` with
  ``interrupted_by`` (the signal's name), and the interruption ends here, so the runner
  returns its run (the command exits 130). An exception of ``fails_on``: ``failed`` with
  ``error`` (its message), re-raised. Any other exception: the runner's status so far
  (``incomplete``), re-raised.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from bench.common.processes import Interrupted, ignore_signals, raise_interrupted
from bench.common.results import Run, environment

SIGNALS = (signal.SIGINT, signal.SIGTERM)
R = TypeVar("R", bound=Run)
EXIT_CODES = {"complete": 0, "incomplete": 130}
"""A command's exit code by its run's final status; any other status (``failed``) is 1."""


def exit_code(status: str) -> int:
    """The exit code of a command whose run ended with *status* (:data:`EXIT_CODES`)."""
    return EXIT_CODES.get(status, 1)


class RunLifecycle(Generic[R]):
    """The signals, creation and finish of one run's result file (see the module)."""

    def __init__(
        self,
        kind: type[R],
        folder: Path,
        *,
        settings: dict[str, Any],
        env: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        program: str | None = None,
        fails_on: tuple[type[Exception], ...] = (),
    ) -> None:
        """*kind*: the result file's class; *env*: added to the environment; *fields*: top
        level entries of the new document; *program*: recorded as ``command``'s first word
        (None: ``Run.create``'s, the script's file name); *fails_on*: exceptions that mark
        the run ``failed``."""
        self.kind = kind
        self.folder = folder
        self.settings = settings
        self.env = env or {}
        self.fields = fields or {}
        self.program = program
        self.fails_on = fails_on
        self.status = "incomplete"
        """What the run is marked when it finishes; the runner sets it once its work is done."""
        self._previous: dict[signal.Signals, Any] = {}
        self._run: R | None = None

    @property
    def run(self) -> R:
        """The run's result file (created on entering)."""
        if self._run is None:
            raise RuntimeError("the run is created on entering its lifecycle")
        return self._run

    def __enter__(self) -> Self:
        self._previous = {sig: signal.signal(sig, raise_interrupted) for sig in SIGNALS}
        try:
            self._run = self.kind.create(
                self.folder, settings=self.settings, env=environment() | self.env, **self.fields
            )
        except BaseException:
            self._restore()
            raise
        if self.program is not None:
            self._run.doc["command"] = [self.program, *sys.argv[1:]]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        ignore_signals()
        try:
            if isinstance(exc, Interrupted):
                self.status = "incomplete"
                self.run.doc["interrupted_by"] = str(exc)
            elif isinstance(exc, self.fails_on):
                self.status = "failed"
                self.run.doc["error"] = str(exc)
            self.run.finish(self.status)
        finally:
            self._restore()
        return isinstance(exc, Interrupted)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@contextmanager
def stopping(cleanup: Callable[[], object]) -> Iterator[None]:
    """Run the block, then *cleanup* (stop the run's children) with SIGINT and SIGTERM
    ignored, however the block ended."""
    try:
        yield
    finally:
        ignore_signals()
        cleanup()
