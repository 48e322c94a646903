"""A variant's server under ``valgrind --tool=callgrind``, and its counters read on demand.

The server starts with instrumentation off (``--instr-atstart=no``: start-up runs several
times faster), is switched on before the warm-up (``callgrind_control -i on``), and each
repeat is bracketed by ``callgrind_control -z`` (zero) and ``-d`` (dump), sent through
``vgdb`` as callgrind_control does. A dump's
``summary:`` line is the instructions the server process executed in user space since
the zeroing (``--collect-systime=no``: the kernel's work is not counted; PostgreSQL and
the load driver are other processes and not counted either).

``CallgrindProcess`` is that control for any process started by ``callgrind_command``;
``CallgrindServer`` is a variant's server, ``bench.cost.operations`` the micro-operations'.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

import variants
from bench.common import environments, processes
from bench.common.server import ServerError, free_port
from bench.cost import callgrind
from bench.cost.callgrind import Dump
from variants.settings import DatabaseUrl

PACKAGE = "valgrind"
INSTALL = f"apt-get install {PACKAGE}"
START_TIMEOUT = 180.0  # s: importing FastAPI + SQLAlchemy under valgrind takes ~20 s alone
CONTROL_TIMEOUT = 60.0  # s for one vgdb call (it waits for the server to answer)
VALGRIND_FLAGS = (
    "--tool=callgrind",
    "--instr-atstart=no",
    "--collect-systime=no",
    "--dump-instr=no",
    "--dump-line=no",
)


class ValgrindMissing(RuntimeError):
    """valgrind or vgdb is not on PATH; the message names the package."""


class CallgrindError(RuntimeError):
    """A vgdb (callgrind_control) call failed or its dump could not be read."""


def require() -> str:
    """valgrind's version string, or ValgrindMissing saying how to install it."""
    missing = [tool for tool in ("valgrind", "vgdb") if shutil.which(tool) is None]
    if missing:
        raise ValgrindMissing(
            f"{' and '.join(missing)} not found on PATH: install the Debian package "
            f"{PACKAGE} (`{INSTALL}`)"
        )
    result = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


_SUMMARY = re.compile(rb"^summary:\s*(\d+)", re.MULTILINE)
_TRIGGER = re.compile(rb"^desc: Trigger: (.*)$", re.MULTILINE)


def read_dump(path: Path) -> tuple[int, str]:
    """(instructions, trigger) of a callgrind dump: its ``summary:`` and ``desc: Trigger`` lines."""
    data = path.read_bytes()
    summary = _SUMMARY.search(data)
    if summary is None:
        raise CallgrindError(f"{path}: no summary line (not a callgrind dump?)")
    trigger = _TRIGGER.search(data)
    return int(summary.group(1)), trigger.group(1).decode().strip() if trigger else ""


def _complete(path: Path) -> bool:
    """Whether the dump at *path* is written to its end (its last line is ``totals:``)."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 200))
        return b"\ntotals:" in f.read()


def _fixed_addresses() -> list[str]:
    """``setarch -R`` (util-linux) when there is one: address-space randomisation off for the
    counted process. Objects hashed by address (sets, dicts keyed by objects, ``id()``) then
    sit in the same slots in every process, as ``PYTHONHASHSEED`` does for str hashes."""
    setarch = shutil.which("setarch")
    return [setarch, platform.machine(), "-R"] if setarch else []


def callgrind_command(out_base: Path, python: str, *args: str) -> list[str]:
    """``python args…`` under callgrind, instrumentation off, dumps to ``out_base.N``."""
    return [
        *_fixed_addresses(),
        shutil.which("valgrind") or "valgrind",  # the counted env's PATH may not hold it
        *VALGRIND_FLAGS,
        f"--callgrind-out-file={out_base}",
        python,
        *args,
    ]


COUNTED_ENV = {
    "PYTHONUNBUFFERED": "1",
    # str hashes (dict and set layouts) are random per process: instruction counts
    # of two processes of the same code differ by ~2 % without a fixed seed
    "PYTHONHASHSEED": "0",
}
"""Environment of every counted process (over ``counted_env``'s)."""

PASSED_ENV = ("TMPDIR", "LANG", "LC_ALL", "LC_CTYPE")
"""The caller's variables a counted process still sees (vgdb finds it through TMPDIR);
besides these only ``SESSIONBENCH_*`` and what the runner sets."""


def counted_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a counted process: not the caller's, whose strings (PWD, OLDPWD,
    a venv's PATH…) differ from shell to shell. CPython copies every variable onto its heap
    at start-up, and a string of another length shifts where later objects land, among them
    the interned attribute names whose addresses key the type attribute cache
    (``_PyType_Lookup``): its collisions moved GET's instructions per request by up to
    1.5 % between two runs of the same code."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("SESSIONBENCH_")}
    return {"PATH": os.defpath, **env, **extra, **COUNTED_ENV}


def counted_cwd() -> Path:
    """A fresh working directory for a counted process whose path has the same length in
    every run (``python -m`` puts the working directory in ``sys.path``; a run folder's path
    would move the heap as the environment does: see ``counted_env``). The caller removes it."""
    return Path(tempfile.mkdtemp(prefix="sessionbench-cost-"))


class CallgrindProcess:
    """A process started by ``callgrind_command``: its counters switched, zeroed and dumped
    through ``vgdb``. Subclasses set ``process``, ``out_base`` and ``name``."""

    name: str
    out_base: Path
    process: subprocess.Popen[bytes] | None = None
    vgdb_flags: tuple[str, ...] = ()

    def __init__(self, *, keep_dumps: bool = False) -> None:
        self.dumps = 0
        self.keep_dumps = keep_dumps

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _control(self, *args: str) -> str:
        """A callgrind monitor command through ``vgdb`` (what ``callgrind_control`` runs,
        without its Perl start-up and its scan of every valgrind process)."""
        try:
            result = subprocess.run(
                ["vgdb", *self.vgdb_flags, f"--pid={self.pid}", *args],
                capture_output=True,
                text=True,
                timeout=CONTROL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CallgrindError(f"vgdb {' '.join(args)} timed out") from None
        if result.returncode != 0:
            raise CallgrindError(
                f"vgdb {' '.join(args)} failed: {(result.stderr or result.stdout).strip()[-300:]}"
            )
        return result.stdout

    def instrument(self, on: bool = True) -> None:
        """Switch instrumentation on (it is off during start-up) or off again."""
        self._control("instrumentation", "on" if on else "off")

    def zero(self) -> None:
        """Zero the counters with a dump that is thrown away. callgrind's own ``zero``
        (3.19) leaves, in the next dump's function lines, the costs of code first run since
        the last dump (a warm-up's: +6 % over the ``summary:`` line in a repeat of GETs);
        the summary line is right either way, the per-function costs only after a dump."""
        self._dump("zero").unlink()

    def dump(self, label: str) -> int:
        """Dump the counters since the last zero; return the instructions in that dump."""
        return self.dump_profile(label, parse=False)[0]

    def dump_profile(self, label: str, *, parse: bool = True) -> tuple[int, Dump | None]:
        """Dump the counters since the last zero: the instructions in that dump and, with
        *parse*, its functions (``bench.cost.callgrind``)."""
        path = self._dump(label)
        instructions = read_dump(path)[0]
        functions = callgrind.parse(path) if parse else None
        if not self.keep_dumps:
            path.unlink()  # ~0.5 MB each; cost.json and profiles/ keep what is read
        return instructions, functions

    def _dump(self, label: str) -> Path:
        """Ask for a dump labelled *label*; its path once it is complete."""
        self._control("dump", label)
        self.dumps += 1
        path = Path(f"{self.out_base}.{self.dumps}")
        deadline = time.monotonic() + 10
        while True:
            try:
                _, trigger = read_dump(path)
            except (FileNotFoundError, CallgrindError):
                if time.monotonic() > deadline:
                    raise CallgrindError(f"no callgrind dump at {path}") from None
                time.sleep(0.05)
                continue
            if trigger != f"dump {label}":
                raise CallgrindError(f"{path} is the dump of {trigger!r}, not of {label!r}")
            if _complete(path):
                return path
            if time.monotonic() > deadline:
                raise CallgrindError(f"{path} has no totals line (cut short?)")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        processes.stop(self.process, signal.SIGINT, timeout)


class CallgrindServer(CallgrindProcess):
    """``sessionbench serve VARIANT`` on the variant's own interpreter, wrapped by callgrind."""

    # Every control finds it idle in epoll_wait (the runner waits for that), where vgdb
    # would wait its default 100 ms before forcing the command in; 1 ms does the same sooner.
    vgdb_flags = ("--max-invoke-ms=1",)

    def __init__(
        self,
        name: str,
        url: DatabaseUrl,
        *,
        raw: Path,
        env: Mapping[str, str] | None = None,
        keep_dumps: bool = False,
    ) -> None:
        super().__init__(keep_dumps=keep_dumps)
        self.variant = variants.get(name)
        self.name = self.variant.name
        self.url = url
        self.raw = raw
        self.env = dict(env or {})
        self.port = free_port()
        self.out_base = raw / f"callgrind-{self.variant.name}.out"
        self.started_at = 0.0
        self.startup_seconds: float | None = None
        self.cwd: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.raw / f"server-{self.variant.name}.log"

    @property
    def ack_path(self) -> Path:
        """In the process's working directory: its path is in the process's arguments."""
        assert self.cwd is not None
        return self.cwd / "gc.ack"

    def launch(self) -> None:
        """Start the process (returns at once; ``wait_ready`` waits for ``/health``)."""
        try:  # valgrind must wrap the interpreter that serves, not one that re-executes
            python = environments.interpreter(self.variant)
        except environments.EnvironmentBuildError as exc:
            raise ServerError(str(exc)) from None
        self.raw.mkdir(parents=True, exist_ok=True)
        self.cwd = counted_cwd()
        cmd = callgrind_command(
            self.out_base,
            python,
            "-m",
            "bench.cost.serve_hook",
            self.variant.name,
            str(self.port),
            str(self.ack_path),
        )
        env = counted_env(
            {
                "SESSIONBENCH_APP_NAME": f"sessionbench-cost-{self.variant.name}-{self.port}",
                **self.env,
                "DATABASE_URL": self.url.url,
            }
        )
        self.started_at = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.cwd,
            )

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self.cwd is not None:
            shutil.rmtree(self.cwd, ignore_errors=True)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = self.started_at + timeout
        while not self._healthy():
            if not self.alive():
                raise ServerError(
                    f"{self.variant.name} exited at start-up under valgrind:\n"
                    f"{processes.tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.variant.name} not healthy under valgrind after {timeout:.0f} s"
                )
            time.sleep(0.2)
        self.startup_seconds = time.monotonic() - self.started_at

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def collect_garbage(self, timeout: float = 60.0) -> None:
        """A full ``gc.collect()`` in the server (SIGUSR1; see ``serve_hook``), waited for."""
        before = self._acks()
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while self._acks() == before:
            if not self.alive() or time.monotonic() > deadline:
                raise CallgrindError(f"{self.variant.name} did not collect garbage on SIGUSR1")
            time.sleep(0.02)

    def _acks(self) -> int:
        try:
            return len(self.ack_path.read_text().splitlines())
        except FileNotFoundError:
            return 0
