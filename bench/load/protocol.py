"""The runner ↔ recorder protocol of a load cell: the environment in, two files out.

The runner (``bench.load.runner``; ``bench.load.coschedule`` for co-scheduled groups) starts
locust with the recorder plug-in (``bench.load.recorder``) and talks to it only through:

- **environment variables** the runner sets (:func:`environ`) and the recorder reads at
  import (:meth:`Settings.read`, with the defaults for those left unset);
- **two files** the master (or only) locust process writes into the cell's raw folder
  (``SESSIONBENCH_OUT``): :data:`START_FILE` once the window is set (its edges, on that
  process's clock), :data:`RESULT_FILE` once every process's record is merged. The runner
  reads both with :func:`read`.

Stdlib only: the recorder imports this inside every locust process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT_ENV = "SESSIONBENCH_OUT"  # the cell's raw folder, where the two files go
WARMUP_ENV = "SESSIONBENCH_WARMUP"  # s from every user running to the window
DURATION_ENV = "SESSIONBENCH_DURATION"  # s of the window (all sub-windows)
WINDOW_AT_ENV = "SESSIONBENCH_WINDOW_AT"  # epoch s the window opens at, instead of the warm-up
WINDOWS_ENV = "SESSIONBENCH_WINDOWS"  # back-to-back sub-windows the window is cut into
FOLLOW_ENV = "SESSIONBENCH_FOLLOW"  # s after the window to follow requests for; 0: off
SEED_ROWS_ENV = "SESSIONBENCH_SEED_ROWS"  # rows of the seed the locustfiles pick ids from
RESULT_TIMEOUT_ENV = "SESSIONBENCH_RESULT_TIMEOUT"  # s the master waits for workers' results
START_FILE = "start.json"
RESULT_FILE = "result.json"


def environ(
    out: Path,
    *,
    duration: float,
    seed_rows: int,
    warmup: float | None = None,
    window_at: float | None = None,
    windows: int | None = None,
    follow: float | None = None,
) -> dict[str, str]:
    """What the runner adds to locust's environment; a setting left None is not set (the
    recorder's default, :class:`Settings`)."""
    given = {
        OUT_ENV: str(out),
        WARMUP_ENV: None if warmup is None else str(warmup),
        DURATION_ENV: str(duration),
        WINDOW_AT_ENV: None if window_at is None else repr(window_at),
        WINDOWS_ENV: None if windows is None else str(windows),
        FOLLOW_ENV: None if follow is None else str(follow),
        SEED_ROWS_ENV: str(seed_rows),
    }
    return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class Settings:
    """What the recorder was told, with the default of each setting left unset."""

    out: str | None = None
    """None: write no files (the recorder still records)."""
    warmup: float = 0.0
    duration: float = 1e9
    window_at: float | None = None
    windows: int = 1
    follow: float = 0.0
    seed_rows: int = 10_000
    result_timeout: float = 15.0

    @classmethod
    def read(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """The settings in *env* (this process's environment by default)."""
        return cls(
            out=env.get(OUT_ENV),
            warmup=float(env.get(WARMUP_ENV, cls.warmup)),
            duration=float(env.get(DURATION_ENV, cls.duration)),
            window_at=float(env[WINDOW_AT_ENV]) if env.get(WINDOW_AT_ENV) else None,
            windows=max(1, int(env.get(WINDOWS_ENV, cls.windows))),
            follow=float(env.get(FOLLOW_ENV, cls.follow)),
            seed_rows=int(env.get(SEED_ROWS_ENV, cls.seed_rows)),
            result_timeout=float(env.get(RESULT_TIMEOUT_ENV, cls.result_timeout)),
        )


def write(folder: str | Path, name: str, doc: dict[str, Any]) -> None:
    """Write *doc* as the file *name* (:data:`START_FILE`, :data:`RESULT_FILE`) in *folder*."""
    (Path(folder) / name).write_text(json.dumps(doc))


def read(folder: Path, name: str) -> dict[str, Any] | None:
    """The file *name* in *folder*; None while it is missing or half-written."""
    try:
        doc: dict[str, Any] = json.loads((folder / name).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc
