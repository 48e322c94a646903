"""Request and response shapes of the Todo contract, and its path and query parameters."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    model_validator,
)

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


Title = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    AfterValidator(_storable),
]
TodoId = Annotated[int, Path(ge=0, le=BIGINT_MAX, description="Todo id (64-bit, ≥ 0)")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
QueryCount = Annotated[str | None, Query(alias="queries", description="1..20, clamped")]


class TodoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    done: StrictBool = False


class TodoUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    done: StrictBool | None = None

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


def multi_ids(first_id: int, queries: str | None) -> range:
    """Ids read by ``/todos/{id}/multi``: ``queries`` clamped to 1..20 (non-integers count as 1)."""
    try:
        count = int(queries) if queries is not None else 1
    except ValueError:
        count = 1
    count = min(max(count, 1), MULTI_MAX)
    return range(first_id, min(first_id + count, BIGINT_MAX + 1))
