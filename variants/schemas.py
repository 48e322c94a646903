"""Request and response shapes of the Todo contract, its parameters, and its error statuses.

The OpenAPI schema says exactly what the server accepts: a title's JSON schema is a
pattern equivalent to the validation (trimmed length 1..200, no NUL), PATCH fields are
optional but never null, and ``CONTRACT_ERRORS`` lists every error status each route
answers (``variants.app`` writes them into the schema with their bodies).
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from variants.models import TITLE_MAX

BIGINT_MAX = 2**63 - 1
MULTI_MAX = 20


def _storable(title: str) -> str:
    """Refuse what a PostgreSQL ``text`` column cannot hold (NUL, lone surrogates)."""
    if "\x00" in title:
        raise ValueError("title must not contain NUL characters")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("title must be valid Unicode text") from exc
    return title


_SEPARATORS = "\x1c\x1d\x1e\x1f"
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in _SEPARATORS)
"""What ``strip_whitespace`` removes: Unicode White_Space (Python's ``isspace`` minus the
four information separators U+001C..U+001F, which pydantic-core keeps; none lies above
U+3000)."""


def _title_pattern() -> str:
    """A regex (ECMA-262 and Python alike) matching exactly the titles the server stores."""
    space = "".join(f"\\u{ord(c):04x}" for c in WHITESPACE)
    edge = f"[^{space}\\u0000]"  # first and last character after trimming
    return f"^[{space}]*{edge}(?:[^\\u0000]{{0,{TITLE_MAX - 2}}}{edge})?[{space}]*$"


Title = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    AfterValidator(_storable),
    WithJsonSchema({"type": "string", "pattern": _title_pattern()}),
]
TodoId = Annotated[int, Path(ge=0, le=BIGINT_MAX, description="Todo id (64-bit, ≥ 0)")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
QueryCount = Annotated[str | None, Query(alias="queries", description="1..20, clamped")]


class TodoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    done: StrictBool = False


def _no_default(schema: dict[str, Any]) -> None:
    """Leave a field's ``null`` default out of the schema: null is not an accepted value."""
    schema.pop("default", None)


class TodoUpdate(BaseModel):
    """Any of ``title`` and ``done``; at least one, never null (the schema says so too)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: Title | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)
    done: StrictBool | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_no_default)

    @model_validator(mode="before")
    @classmethod
    def _some_field_not_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data:
                raise ValueError("give at least one of: title, done")
            nulls = sorted(key for key, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"fields may not be null: {', '.join(nulls)}")
        return data

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, ready to assign."""
        return self.model_dump(exclude_unset=True)


class TodoOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    done: bool
    created_at: datetime


class ErrorBody(BaseModel):
    """Every error but 422: a human-readable ``detail``."""

    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """422: what is wrong where (the input itself is not echoed)."""

    detail: list[ValidationIssue]


ERROR_MEANINGS = {
    404: "No Todo has this id.",
    413: "Request body larger than 64 KiB (refused unread).",
    422: "Invalid path, query or body, including a body that is not JSON.",
    500: "The database failed or could not be reached.",
    503: "No pooled connection became free within the pool timeout (detail: pool timeout).",
}
CONTRACT_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/todos"): (413, 422, 500, 503),
    ("GET", "/todos"): (422, 500, 503),
    ("GET", "/todos/{todo_id}"): (404, 422, 500, 503),
    ("PATCH", "/todos/{todo_id}"): (404, 413, 422, 500, 503),
    ("DELETE", "/todos/{todo_id}"): (404, 422, 500, 503),
    ("GET", "/todos/{todo_id}/multi"): (422, 500, 503),
}
"""Every error status each route of the contract answers (method, path) → statuses."""


def multi_ids(first_id: int, queries: str | None) -> range:
    """Ids read by ``/todos/{id}/multi``: ``queries`` clamped to 1..20 (non-integers count as 1)."""
    try:
        count = int(queries) if queries is not None else 1
    except ValueError:
        count = 1
    count = min(max(count, 1), MULTI_MAX)
    return range(first_id, min(first_id + count, BIGINT_MAX + 1))
