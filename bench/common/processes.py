"""Child processes the suite starts: stop them by PID, read the end of their logs; signals."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any


class ServerError(RuntimeError):
    """A variant server did not start or died; the message carries its last log lines."""


def stop(
    proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    """Send *sig*, wait up to *timeout* seconds, then kill; nothing if it already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, lines: int = 15) -> str:
    """The last *lines* lines of a log file (a placeholder if it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a run (raised by ``raise_interrupted``)."""


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def ignore_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
