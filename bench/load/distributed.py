"""Locust's own distributed mode: the runner's master arguments and the ``worker`` command.

The runner starts one headless locust master per cell (``--master --expect-workers N``);
the master's locustfile names the cell's scenario. A ``sessionbench worker`` is a small
supervisor on any host with the project installed: it runs ``locust --worker -f -``, which
downloads the locustfile of whichever master is up (locust sends the file's text; the
file imports :mod:`bench.load.recorder` from the installed project), and starts it again
each time the master ends its cell and tells its workers to quit. So one long-lived
``worker`` serves every cell of a run, every scenario, and several runs in a row.

Results travel back through locust's messages (:mod:`bench.load.recorder`), never files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_PORT = 5557  # locust's own default master port
DEFAULT_BIND = "127.0.0.1"
# s a master waits for its workers before the run ends with an error
WORKER_WAIT = float(os.environ.get("SESSIONBENCH_WORKER_WAIT", "120"))
RESTART_PAUSE = 0.2  # s between one cell's worker process and the next


@dataclass(frozen=True)
class Master:
    """Where the runner's locust master listens (``--master-bind``/``--master-port``)."""

    workers: int
    bind: str = DEFAULT_BIND
    port: int = DEFAULT_PORT

    def locust_args(self) -> list[str]:
        return [
            "--master", "--expect-workers", str(self.workers),
            "--expect-workers-max-wait", str(int(WORKER_WAIT)),
            "--master-bind-host", self.bind, "--master-bind-port", str(self.port),
        ]  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {"expect_workers": self.workers, "bind": self.bind, "port": self.port}


def parse_master(value: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` too) → (host, port); ValueError names what is wrong."""
    host, port = value, DEFAULT_PORT
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"))
    elif value.count(":") == 1:
        host, _, text = value.partition(":")
        port = _port(text)
    if not host:
        raise ValueError(f"no host in {value!r}")
    return host, port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def worker_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "locust", "--worker", "-f", "-",
        "--master-host", host, "--master-port", str(port), "--loglevel", "WARNING",
    ]  # fmt: skip


def run_worker(host: str, port: int, *, cells: int | None = None) -> int:
    """Serve masters at host:port until SIGINT/SIGTERM (or ``cells`` worker processes ran)."""
    stopping = {"now": False}
    child: dict[str, subprocess.Popen[bytes] | None] = {"p": None}

    def stop(signum: int, frame: object) -> None:
        stopping["now"] = True
        if child["p"] is not None and child["p"].poll() is None:
            child["p"].terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"sessionbench worker: serving the locust master at {host}:{port}", flush=True)
    ran = 0
    while not stopping["now"] and (cells is None or ran < cells):
        process = subprocess.Popen(worker_command(host, port), stdin=subprocess.DEVNULL)
        child["p"] = process
        code = process.wait()
        child["p"] = None
        ran += 1
        if code != 0 and not stopping["now"]:
            # no master within locust's connect timeout, or it went away: try again
            print(f"sessionbench worker: locust worker exited {code}; retrying", flush=True)
            time.sleep(1.0)
        time.sleep(RESTART_PAUSE)
    return 0


def contributed(recorded: dict[str, Any]) -> int:
    """Workers whose results reached the master (the master's own entry excluded)."""
    return max(0, int(recorded["processes"]) - 1)
