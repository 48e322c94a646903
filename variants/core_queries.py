"""The same queries as ``variants.queries`` in SQLAlchemy Core, for the ``core`` baseline."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from variants.errors import TodoNotFound
from variants.models import todos
from variants.schemas import TodoCreate, TodoUpdate

TodoRow = Row[Any]


async def get_todo(conn: AsyncConnection, *, todo_id: int) -> TodoRow:
    row = (await conn.execute(select(todos).where(todos.c.id == todo_id))).first()
    if row is None:
        raise TodoNotFound(todo_id)
    return row


async def list_todos(conn: AsyncConnection, *, limit: int, offset: int) -> Sequence[TodoRow]:
    stmt = select(todos).order_by(todos.c.id).limit(limit).offset(offset)
    return (await conn.execute(stmt)).all()


async def create_todo(conn: AsyncConnection, *, data: TodoCreate) -> TodoRow:
    stmt = insert(todos).values(title=data.title, done=data.done).returning(*todos.c)
    return (await conn.execute(stmt)).one()


async def update_todo(conn: AsyncConnection, *, todo_id: int, data: TodoUpdate) -> TodoRow:
    stmt = update(todos).where(todos.c.id == todo_id).values(data.changes()).returning(*todos.c)
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise TodoNotFound(todo_id)
    return row


async def delete_todo(conn: AsyncConnection, *, todo_id: int) -> None:
    stmt = delete(todos).where(todos.c.id == todo_id).returning(todos.c.id)
    if (await conn.execute(stmt)).first() is None:
        raise TodoNotFound(todo_id)


async def multi_todos(conn: AsyncConnection, *, ids: range) -> list[TodoRow]:
    """One primary-key query per id, in order, skipping ids that do not exist."""
    rows = [(await conn.execute(select(todos).where(todos.c.id == i))).first() for i in ids]
    return [row for row in rows if row is not None]
