"""Run one variant as its own server: in this process (``serve``) or as a child process.

``serve`` is what ``sessionbench serve`` does: uvicorn with uvloop and httptools, no
access log, on 127.0.0.1. ``VariantServer`` starts that same command as a child
(optionally pinned to CPUs), waits for ``/health`` and stops it by its PID.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import variants
from bench.common import database, environments, processes, tally
from bench.common.processes import ServerError
from variants.app import LAB_ENV
from variants.settings import DRIVER_ENV, DatabaseUrl

GC_FREEZE_ENV = "SESSIONBENCH_GC_FREEZE"
"""``1``: the server imports its app, collects, and freezes the heap (``gc.freeze()``) before
it serves, so a full collection scans only what requests leave behind, not the ~100,000
objects of the imported modules (~65 ms per full collection on this machine)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    server: str = "uvicorn",
    lab: bool = False,
    metrics_port: int | None = None,
) -> None:
    """Serve variant *name* until interrupted, on ``DATABASE_URL`` or an embedded PostgreSQL.

    *lab* mounts the pitfall lab's ``/lab`` routes (only the pitfall matrix asks for them);
    the flag, not an inherited environment, decides.
    """
    variant = variants.get(name)
    driver = os.environ.get(DRIVER_ENV) or variant.driver
    if driver not in variant.drivers:
        raise SystemExit(
            f"sessionbench: error: {name} runs on {', '.join(variant.drivers)} only, "
            f"not {DRIVER_ENV}={driver}"
        )
    os.environ[DRIVER_ENV] = driver
    os.environ[LAB_ENV] = "1" if lab else "0"
    environments.exec_in_own_environment(variant)  # no-op in the variant's environment
    with database.terminate_on_sigterm(), database.database_url_or_embedded() as (url, embedded):
        asyncio.run(database.ensure_schema(url))
        os.environ["DATABASE_URL"] = url.url
        # the name `run --remote` looks for in pg_stat_activity (a started server gets it too)
        os.environ.setdefault("SESSIONBENCH_APP_NAME", f"sessionbench-{name}-{port}")
        if metrics_port is not None:
            from bench.common.metrics import start_exporter

            start_exporter(host, metrics_port)
            print(f"sessionbench: metrics on http://{host}:{metrics_port}/metrics", file=sys.stderr)
        where = "embedded PostgreSQL" if embedded else url.redacted
        print(
            f"sessionbench: serving {name} with {server} ({workers} worker"
            f"{'s' if workers > 1 else ''}) on http://{host}:{port} ({where})",
            file=sys.stderr,
        )
        if server == "granian":
            _granian(variant.app, host=host, port=port, workers=workers)
            return
        app: Any = variant.app
        if os.environ.get(tally.TALLY_ENV) and workers == 1:
            app = tally.wrap(importlib.import_module(variant.module).app)
        if os.environ.get(GC_FREEZE_ENV) == "1" and workers == 1:
            app = importlib.import_module(variant.module).app if isinstance(app, str) else app
            gc.collect()
            gc.freeze()  # the startup heap leaves the collector's scans (see GC_FREEZE_ENV)
        uvicorn.run(
            app, host=host, port=port, workers=workers, loop="uvloop", http="httptools",
            access_log=False, log_level="warning", lifespan="on",
        )  # fmt: skip


def _granian(app: str, *, host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        app, address=host, port=port, interface=Interfaces.ASGI, workers=workers,
        loop=Loops.uvloop, log_access=False, log_level=LogLevels.warning,
    ).serve()  # fmt: skip


class VariantServer:
    """A variant served by a child ``sessionbench serve`` process against a given database."""

    def __init__(
        self,
        name: str,
        url: DatabaseUrl,
        *,
        log_path: Path,
        port: int | None = None,
        cpus: set[int] | None = None,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        server: str = "uvicorn",
        lab: bool = False,
    ) -> None:
        self.variant = variants.get(name)
        self.lab = lab
        self.url = url
        self.port = port or free_port()
        self.cpus = cpus
        self.env = dict(env or {})
        self.workers = workers
        self.server = server
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def app_name(self) -> str:
        """The ``application_name`` its database connections carry (unique per server)."""
        return f"sessionbench-{self.variant.name}-{self.port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        env = {
            **os.environ,
            "SESSIONBENCH_APP_NAME": self.app_name,
            **self.env,
            "DATABASE_URL": self.url.url,
            "PYTHONUNBUFFERED": "1",
        }
        try:  # a variant with its own environment runs on that venv's interpreter
            python = environments.interpreter(self.variant)
        except environments.EnvironmentBuildError as exc:
            raise ServerError(str(exc)) from None
        cmd = [python, "-m", "bench.cli", "serve", self.variant.name]
        cmd += ["--port", str(self.port), "--workers", str(self.workers), "--server", self.server]
        if self.lab:
            cmd.append("--lab")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        if self.cpus:
            os.sched_setaffinity(self.process.pid, self.cpus)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if not self.alive():
                raise ServerError(f"{self.variant.name} exited at start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.variant.name} server not healthy after {timeout:.0f} s")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        processes.stop(self.process, signal.SIGINT, timeout)

    def log_tail(self, lines: int = 15) -> str:
        return processes.tail(self.log_path, lines)

    def __enter__(self) -> VariantServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
