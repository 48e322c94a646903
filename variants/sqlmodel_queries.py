"""SQLModel's ``todos`` table model and the queries of ``variants.queries`` written for it.

The same table as ``variants.models.Todo`` (same columns, types, identity and defaults),
declared the way SQLModel's docs show: one ``SQLModel, table=True`` class on SQLModel's own
metadata. Queries differ from the shared ones only where SQLModel's API does: a list is
``session.exec(select(...))``; the rest is the same ``get``/``add``/``flush``/``delete``.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Identity, Text, func
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from variants.errors import TodoNotFound
from variants.schemas import TodoCreate, TodoUpdate


class Todo(SQLModel, table=True):
    __tablename__ = "todos"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    title: str = Field(sa_column=Column(Text, nullable=False))
    done: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def get_todo(session: AsyncSession, *, todo_id: int) -> Todo:
    todo = await session.get(Todo, todo_id)
    if todo is None:
        raise TodoNotFound(todo_id)
    return todo


async def list_todos(session: AsyncSession, *, limit: int, offset: int) -> Sequence[Todo]:
    stmt = select(Todo).order_by(Todo.id).limit(limit).offset(offset)  # type: ignore[arg-type]
    return (await session.exec(stmt)).all()


async def create_todo(session: AsyncSession, *, data: TodoCreate) -> Todo:
    todo = Todo(title=data.title, done=data.done)
    session.add(todo)
    await session.flush()
    return todo


async def update_todo(session: AsyncSession, *, todo_id: int, data: TodoUpdate) -> Todo:
    todo = await get_todo(session, todo_id=todo_id)
    for field, value in data.changes().items():
        setattr(todo, field, value)
    await session.flush()
    return todo


async def delete_todo(session: AsyncSession, *, todo_id: int) -> None:
    todo = await get_todo(session, todo_id=todo_id)
    await session.delete(todo)
    await session.flush()


async def multi_todos(session: AsyncSession, *, ids: range) -> list[Todo]:
    """One primary-key query per id, in order, skipping ids that do not exist."""
    found = [await session.get(Todo, todo_id) for todo_id in ids]
    return [todo for todo in found if todo is not None]
