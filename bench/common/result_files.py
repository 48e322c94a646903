"""The typed result folder: one pydantic model per file, read and written through it.

``RunFile`` (run.json: ``LoadSettings``, ``SeriesInfo`` per series, ``LoadCell`` per cell),
``PitfallFile`` (pitfalls.json), ``CostFile`` (cost.json), ``MicroFile`` (micro.json:
pytest-benchmark's JSON with micro's ``MicroStatus``), ``HistoryFile`` (history.json);
bench/common/run_folder.py names the files and which command writes each. The fields
readers use are typed; every other field is kept (``extra="allow"``), so a writer adding one
breaks no reader. Each suite file
carries its format (``schema``: ``<family>/<N>``, :data:`READS`).

``load(path, Model)`` reads a JSON file and validates it against its model; any problem
(missing or unreadable file, truncated or corrupt JSON, a document of another kind, a format
written by an older or newer sessionbench, a field of the wrong shape) raises
``ResultFileError`` whose message is one line naming the file and what is wrong. The CLI
prints that line and exits 2.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bench.common.co_record import CoRecord

Model = TypeVar("Model", bound=BaseModel)


class ResultFileError(ValueError):
    """A result file cannot be used; the message is one line naming it and the problem."""


class Lenient(BaseModel):
    """A model that checks its fields and keeps every other one."""

    model_config = ConfigDict(extra="allow")


def read_json(path: Path) -> Any:
    """The JSON in *path*; ResultFileError if it is missing, unreadable or not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not text.strip():
        raise ResultFileError(f"{path}: empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        cut = "" if text.rstrip().endswith(("}", "]")) else " (truncated?)"
        raise ResultFileError(
            f"{path}: not valid JSON{cut}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def load(path: Path, model: type[Model]) -> Model:
    """*path* read and validated as *model*; ResultFileError (one line) on any problem."""
    return validate(path, read_json(path), model)


def validate(path: Path, document: Any, model: type[Model]) -> Model:
    """*document* (read from *path*) validated as *model*; ResultFileError (one line) if not."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ResultFileError(f"{path}: {describe(exc)}") from None


def load_document(path: Path, model: type[BaseModel]) -> dict[str, Any]:
    """*path* validated as *model*, returned as the plain dict (the history's readers still
    index one)."""
    document = read_json(path)
    validate(path, document, model)
    assert isinstance(document, dict)  # every model here is an object
    return document


def describe(exc: ValidationError) -> str:
    """The first validation error as ``where: what`` (and how many more), on one line."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    what = first["msg"].replace("\n", " ").removeprefix("Value error, ")
    if first["type"] == "missing":
        what = "missing"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{what}{more}"


def ensure_writable(folder: Path, flag: str = "--out") -> None:
    """Create *folder* if needed and prove a file can be written there; else ResultFileError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ResultFileError(
            f"{flag} {folder}: cannot write there ({exc.strerror or exc})"
        ) from None


# --- the models of the suite's own files --------------------------------------------------

READS: dict[str, tuple[int, ...]] = {
    "sessionbench.run": (1, 2),  # /1: no censoring recorded (read as such: nothing to migrate)
    "sessionbench.pitfalls": (1,),
    "sessionbench.cost": (1,),
    "sessionbench.cost-profile": (1,),
    "sessionbench.history": (1,),
}
"""The format versions this sessionbench reads, per family (``schema``: ``<family>/<N>``)."""


def schema_family(family: str) -> Any:
    """A ``schema`` field ``<family>/<N>`` with N in :data:`READS`; else one line naming what
    was found: a document of another kind, or a version written by an older or newer suite."""

    def check(cls: type[BaseModel], data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        found = data.get("schema")
        pattern = rf"{re.escape(family)}/(\d+)"
        match = re.fullmatch(pattern, found) if isinstance(found, str) else None
        if match is None:
            raise ValueError(f"not a {family}/… document (schema: {found!r})")
        version, known = int(match.group(1)), READS[family]
        if version not in known:
            by = "a newer" if version > max(known) else "an older"
            raise ValueError(
                f"{found} was written by {by} sessionbench; this one reads "
                + ", ".join(f"{family}/{v}" for v in known)
            )
        return data

    return model_validator(mode="before")(classmethod(check))  # type: ignore[arg-type]


Number = int | float
"""A number as the file holds it (an int stays an int: tables print what was measured)."""


class Timeouts(Lenient):
    """Requests of a followed window answered 503 after ``pool_timeout``: count of of, at_s."""

    count: int
    of: int
    at_s: Number


class LittlesLaw(Lenient):
    """Recorded mean latency against users / req/s (1.00: every request accounted for)."""

    ratio: Number
    ok: bool = True


class Histogram(Lenient):
    """An HdrHistogram, encoded (bench.common.histograms)."""

    histogram: str


class Barging(Lenient):
    """Pool checkouts, and those that took a free connection while others waited."""

    checkouts: int
    barged: int


class LoadCell(Lenient):
    """One load cell (variant × scenario × users × trial) of run.json, as the readers read it.

    Measured fields are present on valid cells (``status == "ok"``); an invalid or failed
    cell may lack them. Fields only some runs record default to None (not recorded).
    """

    variant: str
    scenario: str = ""
    users: int = 0
    trial: int | None = None
    status: str = ""
    reasons: list[str] = []
    requests: int | None = None
    started_in_window: int | None = None
    rps: Number | None = None
    latency_us: dict[str, Number] = {}
    latency_completed_us: dict[str, Number] | None = None
    cpu_us_per_request: dict[str, Number | None] = {}
    tail_resolved: bool | None = None
    fairness: dict[str, Number] | None = None
    follow: dict[str, Any] | None = None
    timeouts: Timeouts | None = None
    littles_law: LittlesLaw | None = None
    failures_by_phase: dict[str, dict[str, int]] | None = None
    lingering_transactions: Any = None
    server_cpu: str | None = None  # how a remote server's CPU was read, or why it was not
    drivers_loaded: list[str] | None = None
    stall: dict[str, Any] | None = None
    pool_wait_us: Histogram | None = None
    pool_hold_us: Histogram | None = None
    pool_barging: Barging | None = None

    @field_validator("latency_us", "cpu_us_per_request", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _measured_when_ok(self) -> LoadCell:
        if self.status == "ok":
            for key in ("rps", "latency_us", "cpu_us_per_request"):
                if key not in self.model_fields_set:
                    raise ValueError(f"a valid cell of {self.variant} has no {key!r}")
        return self

    @property
    def ok(self) -> bool:
        """A valid cell: its numbers count."""
        return self.status == "ok"

    @property
    def measured_rps(self) -> float:
        """req/s of a valid cell (the validator made sure it has one)."""
        assert self.rps is not None, f"{self.variant}: no req/s"
        return self.rps

    @property
    def server_us(self) -> float | None:
        """Server CPU µs per request (None: not measured)."""
        return self.cpu_us_per_request.get("server")

    @property
    def jain(self) -> float:
        """Jain's fairness index of requests per user (nan: not recorded)."""
        return (self.fairness or {}).get("jain", math.nan)


class RunHeader(Lenient):
    """What run.json, pitfalls.json and cost.json share (each adds its own ``settings``)."""

    schema_: str = Field(alias="schema")
    run_id: str | None = None
    status: str
    started: str | None = None
    finished: str | None = None
    command: list[str] = []
    environment: dict[str, Any]
    variants: dict[str, dict[str, Any]]


class Verify(Lenient):
    """The contract check a series passed (or why not) before it was measured."""

    passed: bool = False
    failures: list[str] = []


class SeriesInfo(Lenient):
    """What run.json records of one series: its variant and the axis values it ran with
    (absent fields: the run did not record them, or the axis did not apply)."""

    variant: str | None = None
    kind: str | None = None
    driver: str | None = None
    pool_size: int | None = None
    pool_queue: str | None = None
    workers: int | None = None
    server: str | None = None
    threadpool_tokens: int | None = None
    verify: Verify | None = None

    def recorded(self, field: str) -> bool:
        """Whether the run recorded *field* for this series (even as null)."""
        return field in self.model_fields_set


class LoadSettings(Lenient):
    """How a load run was configured (``sessionbench run``'s flags, as recorded)."""

    mode: str | None = None
    variants: list[str] = []
    series: list[str] | None = None  # variant + varied axes; absent before axes existed
    scenarios: list[str] = []
    users: list[int] = []
    trials: int = 0
    warmup: Number = 0
    duration: Number = 0
    max_overflow: int | None = None
    pool_size: int | None = None
    pool_sizes: list[int] | None = None
    asgi_servers: list[str] = ["uvicorn"]
    workers: list[int] = [1]
    locust_processes: int = 1
    driver_settings: dict[str, dict[str, Any]] = {}
    follow: Number = 0  # seconds each request is followed past the window (0: not followed)
    gc_freeze: bool = False  # the servers froze their startup heap (absent: they did not)


class RunFile(RunHeader):
    """``run.json`` of a load run (``sessionbench.run/N``); ``coscheduled``: the co-scheduled
    pass (bench/load/coschedule.py; its models: bench/common/co_record.py) where the run had
    one."""

    _family = schema_family("sessionbench.run")
    settings: LoadSettings
    variants: dict[str, SeriesInfo]  # type: ignore[assignment]  # the header's, typed
    cells: list[LoadCell]
    coscheduled: CoRecord | None = None

    def series_names(self) -> list[str]:
        """The run's series (variant + varied axes) that have cells, in declaration order."""
        declared = self.settings.series or self.settings.variants
        present = {c.variant for c in self.cells}
        return [name for name in declared if name in present]

    def top_users(self) -> int:
        """The run's highest concurrency."""
        return max(c.users for c in self.cells)


class PitfallRunRecord(Lenient):
    """One run of a repeated pitfall cell (bench/pitfalls/repeats.py)."""

    outcome: str
    summary: str | None = None
    numbers: dict[str, Any] = {}
    seconds: Number = 0
    notes: list[str] = []


class PitfallCell(Lenient):
    """One cell of the pitfall matrix: a variant in a scenario (with its pool setting); a
    repeated cell (bench/pitfalls/repeats.py) adds ``tally`` and ``runs``."""

    variant: str
    scenario: str
    outcome: str
    summary: str | None = None
    numbers: dict[str, Any] = {}
    pool_pre_ping: bool | None = None  # the scenario's pool setting, where it varies one
    notes: list[str] = []
    seconds: Number = 0
    series: dict[str, Any] | None = None  # the figures' time series (restart, soak)
    tally: dict[str, int] | None = None
    runs: list[PitfallRunRecord] | None = None


class PitfallSettings(Lenient):
    """How a pitfall matrix was configured (``sessionbench pitfalls``' flags, as recorded)."""

    mode: str = ""
    variants: list[str] = []
    scenarios: list[str] = []
    soak: Number = 0
    pool_size: int | None = None
    pool_timeout: Number = 0
    pre_ping: str = "off"  # off, on, or both (the restart also with it on)
    repeats: int = 1


class PitfallFile(RunHeader):
    """``pitfalls.json`` of a pitfall matrix (``sessionbench.pitfalls/N``)."""

    _family = schema_family("sessionbench.pitfalls")
    settings: PitfallSettings
    scenarios: dict[str, str]
    cells: list[PitfallCell]


class CostRow(Lenient):
    """Instructions per request of one (variant, endpoint, clients): median of the repeats."""

    variant: str
    endpoint: str
    clients: int = 1
    instructions_per_request: float
    instructions_per_op: float | None = None
    spread_percent: float
    repeats: int | None = None
    requests: int | None = None
    ops: int | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.endpoint, self.clients)


class CostOperation(Lenient):
    """Instructions of one micro operation (bench.cost.operations) of a variant."""

    variant: str
    group: str
    operation: str
    instructions_per_op: float
    spread_percent: float
    repeats: int | None = None
    ops: int | None = None


class CostSettings(Lenient):
    """How a cost run was configured (``sessionbench cost``'s flags, as recorded)."""

    repeats: int | None = None


class CostFile(RunHeader):
    """``cost.json`` of ``sessionbench cost`` (``sessionbench.cost/N``)."""

    _family = schema_family("sessionbench.cost")
    settings: CostSettings
    rows: list[CostRow] = []
    operations: list[CostOperation] = []
    operations_skipped: dict[str, str] = {}
    operations_error: str | None = None

    def per_request(self) -> dict[tuple[str, str], float]:
        """(variant, endpoint) → instructions per request at the fewest clients measured."""
        rows = [r for r in self.rows if r.instructions_per_request]
        if not rows:
            return {}
        fewest = min(r.clients for r in rows)
        return {
            (r.variant, r.endpoint): r.instructions_per_request for r in rows if r.clients == fewest
        }

    def row_index(self) -> dict[tuple[str, str, int], CostRow]:
        """Rows by (variant, endpoint, clients)."""
        return {r.key: r for r in self.rows}


class MicroStats(Lenient):
    """pytest-benchmark's statistics of one benchmark, per operation, in seconds."""

    median: float
    iqr: float
    q1: float
    q3: float
    rounds: int
    data: list[float] | None = None


class MicroBenchmark(Lenient):
    name: str
    group: str | None
    param: str | None = None
    stats: MicroStats


class MicroStatus(Lenient):
    """What ``sessionbench micro`` adds to pytest-benchmark's JSON (``sessionbench``)."""

    quick: bool
    status: str
    wall_seconds: float
    git_commit: str | None = None
    git_dirty: bool | None = None


class MicroFile(Lenient):
    """``micro.json``: pytest-benchmark's own JSON, and micro's status under ``sessionbench``
    (before that key, micro wrote it into the folder's run.json as ``micro``)."""

    benchmarks: list[MicroBenchmark]
    sessionbench: MicroStatus | None = None


class HistorySet(Lenient):
    """One version set of a history: what it varies, what moved with it, how it went."""

    name: str
    package: str | None = None
    """The package it varies (None: the baseline, main's pins)."""
    version: str | None = None
    changed: dict[str, str] = {}
    """Every package whose version differs from the baseline's (the varied one included)."""
    status: str
    """``pending`` (not reached), ``done``, ``failed`` (environment or run; see ``error``)."""
    error: str | None = None
    cannot_run: dict[str, str] = {}
    """Variants that cannot run in this set, each with the one-line reason."""


class HistoryPoint(Lenient):
    """Instructions per request of one (set, variant, endpoint): cost.json's row."""

    set: str
    variant: str
    endpoint: str
    instructions_per_request: float
    spread_percent: float
    repeats: int


class HistoryStep(Lenient):
    """A change between two neighbouring sets of one package's series beyond the spreads."""

    package: str
    before: str
    after: str
    variant: str
    endpoint: str
    change_percent: float
    noise_percent: float
    changed: dict[str, str] = {}
    """The packages that differ between the two sets: ``{package: "old → new"}``."""
    packages: list[tuple[str, float]] = []
    """The explain's packages by |difference| (instructions per request), when explained."""
    functions: list[tuple[str, str, float]] = []
    """The explain's top functions (function, object, inclusive difference), when explained."""


class HistoryFile(RunHeader):
    """``history.json`` of ``sessionbench history`` (``sessionbench.history/N``)."""

    _family = schema_family("sessionbench.history")
    settings: dict[str, Any]
    sets: list[HistorySet]
    points: list[HistoryPoint] = []
    steps: list[HistoryStep] = []
