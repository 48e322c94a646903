"""Result files are input too: read run.json, pitfalls.json, micro.json (and others) safely.

``load(path, Model)`` reads a JSON file and validates it against a pydantic model; any
problem (missing or unreadable file, truncated or corrupt JSON, a document of another kind
or schema version, a field of the wrong shape) raises ``ResultFileError`` whose message is
one line naming the file and what is wrong. The CLI prints that line and exits 2.
The models check what the readers rely on and let every other field through
(``extra="allow"``), so a helper adding fields does not break loading; a command with a
file of its own (cost.json, …) writes its model next to its code and calls ``load``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    document = read_json(path)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ResultFileError(f"{path}: {describe(exc)}") from None


def load_document(path: Path, model: type[BaseModel]) -> dict[str, Any]:
    """*path* validated as *model*, returned as the plain dict the readers index."""
    document = read_json(path)
    try:
        model.model_validate(document)
    except ValidationError as exc:
        raise ResultFileError(f"{path}: {describe(exc)}") from None
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


def schema_family(pattern: str) -> Any:
    """A ``schema`` field matching ``<family>/<version>``, naming what was found when not."""

    def check(cls: type[BaseModel], data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        found = data.get("schema")
        if not isinstance(found, str) or not re.fullmatch(pattern, found):
            family = pattern.split("/")[0].replace("\\", "")
            raise ValueError(f"not a {family}/… document (schema: {found!r})")
        return data

    return model_validator(mode="before")(classmethod(check))  # type: ignore[arg-type]


class LoadCell(Lenient):
    """A load cell: the fields the report and compare read must have the right type."""

    variant: str
    scenario: str | None = None
    users: int | None = None
    status: str | None = None

    @model_validator(mode="after")
    def _measured_when_ok(self) -> LoadCell:
        if self.status == "ok":
            extra = self.model_extra or {}
            for key in ("rps", "latency_us", "cpu_us_per_request"):
                if key not in extra:
                    raise ValueError(f"a valid cell of {self.variant} has no {key!r}")
            if not isinstance(extra["rps"], int | float):
                raise ValueError(f"rps of {self.variant} is not a number")
        return self


class RunHeader(Lenient):
    """What run.json and pitfalls.json share."""

    schema_: str = Field(alias="schema")
    status: str
    settings: dict[str, Any]
    environment: dict[str, Any]
    variants: dict[str, dict[str, Any]]


class RunFile(RunHeader):
    """``run.json`` of a load run (``sessionbench.run/N``)."""

    _family = schema_family(r"sessionbench\.run/\d+")
    cells: list[LoadCell]


class PitfallCell(Lenient):
    variant: str
    scenario: str
    outcome: str
    summary: str | None = None
    numbers: dict[str, Any] = {}


class PitfallFile(RunHeader):
    """``pitfalls.json`` of a pitfall matrix (``sessionbench.pitfalls/N``)."""

    _family = schema_family(r"sessionbench\.pitfalls/\d+")
    scenarios: dict[str, str]
    cells: list[PitfallCell]


class MicroStats(Lenient):
    median: float
    data: list[float] | None = None


class MicroBenchmark(Lenient):
    name: str
    group: str | None
    stats: MicroStats


class MicroFile(Lenient):
    """``micro.json``: pytest-benchmark's own JSON."""

    benchmarks: list[MicroBenchmark]
