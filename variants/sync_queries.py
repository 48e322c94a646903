"""The queries of ``variants.queries`` through SQLAlchemy's sync ``Session`` (sync_threadpool)."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from variants.errors import TodoNotFound
from variants.models import Todo
from variants.schemas import TodoCreate, TodoUpdate


def get_todo(session: Session, *, todo_id: int) -> Todo:
    todo = session.get(Todo, todo_id)
    if todo is None:
        raise TodoNotFound(todo_id)
    return todo


def list_todos(session: Session, *, limit: int, offset: int) -> Sequence[Todo]:
    return session.scalars(select(Todo).order_by(Todo.id).limit(limit).offset(offset)).all()


def create_todo(session: Session, *, data: TodoCreate) -> Todo:
    todo = Todo(title=data.title, done=data.done)
    session.add(todo)
    session.flush()
    return todo


def update_todo(session: Session, *, todo_id: int, data: TodoUpdate) -> Todo:
    todo = get_todo(session, todo_id=todo_id)
    for field, value in data.changes().items():
        setattr(todo, field, value)
    session.flush()
    return todo


def delete_todo(session: Session, *, todo_id: int) -> None:
    todo = get_todo(session, todo_id=todo_id)
    session.delete(todo)
    session.flush()


def multi_todos(session: Session, *, ids: range) -> list[Todo]:
    """One primary-key query per id, in order, skipping ids that do not exist."""
    found = [session.get(Todo, todo_id) for todo_id in ids]
    return [todo for todo in found if todo is not None]
