"""The same queries as ``variants.queries`` in plain SQL on an asyncpg connection (``raw``)."""

from typing import Any

import asyncpg

from variants.errors import TodoNotFound
from variants.schemas import TodoCreate, TodoUpdate

TodoRow = dict[str, Any]
_COLUMNS = "id, title, done, created_at"


def _todo(record: asyncpg.Record | None, todo_id: int) -> TodoRow:
    if record is None:
        raise TodoNotFound(todo_id)
    return dict(record)


async def get_todo(conn: asyncpg.Connection, *, todo_id: int) -> TodoRow:
    record = await conn.fetchrow(f"SELECT {_COLUMNS} FROM todos WHERE id = $1", todo_id)
    return _todo(record, todo_id)


async def list_todos(conn: asyncpg.Connection, *, limit: int, offset: int) -> list[TodoRow]:
    sql = f"SELECT {_COLUMNS} FROM todos ORDER BY id LIMIT $1 OFFSET $2"
    return [dict(record) for record in await conn.fetch(sql, limit, offset)]


async def create_todo(conn: asyncpg.Connection, *, data: TodoCreate) -> TodoRow:
    sql = f"INSERT INTO todos (title, done) VALUES ($1, $2) RETURNING {_COLUMNS}"
    return dict(await conn.fetchrow(sql, data.title, data.done))


async def update_todo(conn: asyncpg.Connection, *, todo_id: int, data: TodoUpdate) -> TodoRow:
    changes = data.changes()
    assignments = ", ".join(f"{field} = ${n}" for n, field in enumerate(changes, start=2))
    sql = f"UPDATE todos SET {assignments} WHERE id = $1 RETURNING {_COLUMNS}"
    return _todo(await conn.fetchrow(sql, todo_id, *changes.values()), todo_id)


async def delete_todo(conn: asyncpg.Connection, *, todo_id: int) -> None:
    _todo(await conn.fetchrow("DELETE FROM todos WHERE id = $1 RETURNING id", todo_id), todo_id)


async def multi_todos(conn: asyncpg.Connection, *, ids: range) -> list[TodoRow]:
    """One primary-key query per id, in order, skipping ids that do not exist."""
    sql = f"SELECT {_COLUMNS} FROM todos WHERE id = $1"
    records = [await conn.fetchrow(sql, todo_id) for todo_id in ids]
    return [dict(record) for record in records if record is not None]
