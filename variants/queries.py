"""The ORM query functions every session strategy calls; they never commit or close."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from variants.errors import TodoNotFound
from variants.models import Todo
from variants.schemas import TodoCreate, TodoUpdate

AnySession = AsyncSession | async_scoped_session[AsyncSession]
"""A session, or the scoped registry that proxies one (as the ``scoped`` variant passes it)."""


async def get_todo(session: AnySession, *, todo_id: int) -> Todo:
    todo = await session.get(Todo, todo_id)
    if todo is None:
        raise TodoNotFound(todo_id)
    return todo


async def list_todos(session: AnySession, *, limit: int, offset: int) -> Sequence[Todo]:
    result = await session.scalars(select(Todo).order_by(Todo.id).limit(limit).offset(offset))
    return result.all()


async def create_todo(session: AnySession, *, data: TodoCreate) -> Todo:
    todo = Todo(title=data.title, done=data.done)
    session.add(todo)
    await session.flush()
    return todo


async def update_todo(session: AnySession, *, todo_id: int, data: TodoUpdate) -> Todo:
    todo = await get_todo(session, todo_id=todo_id)
    for field, value in data.changes().items():
        setattr(todo, field, value)
    await session.flush()
    return todo


async def delete_todo(session: AnySession, *, todo_id: int) -> None:
    todo = await get_todo(session, todo_id=todo_id)
    await session.delete(todo)
    await session.flush()


async def multi_todos(session: AnySession, *, ids: range) -> list[Todo]:
    """One primary-key query per id, in order, skipping ids that do not exist."""
    found = [await session.get(Todo, todo_id) for todo_id in ids]
    return [todo for todo in found if todo is not None]
