"""The Todo routes of the two session families, built once for every variant of each family.

A global-session variant (``scoped``, ``scoped_task``, ``scoped_basehttp``, libraries with a
``db.session`` global) passes a getter for its global session; an injected-session variant
(``depends``, ``depends_function``, libraries with a session dependency) passes its
``Annotated[AsyncSession, Depends(...)]`` alias. Handlers commit their own writes; closing
the session is the strategy's business. Variant modules then differ only in session lines.
"""

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from variants import queries
from variants.app import location
from variants.models import Todo
from variants.queries import AnySession
from variants.schemas import (
    Limit,
    Offset,
    QueryCount,
    TodoCreate,
    TodoId,
    TodoOut,
    TodoUpdate,
    multi_ids,
)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def global_session_router(current: Callable[[], AnySession]) -> APIRouter:
    """Handlers that reach the request's session through a global: ``current()``."""
    router = APIRouter()

    @router.post("/todos", status_code=201, response_model=TodoOut)
    async def create_todo(data: TodoCreate, response: Response) -> Todo:
        session = current()
        todo = await queries.create_todo(session, data=data)
        await session.commit()
        response.headers["Location"] = location(todo.id)
        return todo

    @router.get("/todos", response_model=list[TodoOut])
    async def list_todos(limit: Limit = 20, offset: Offset = 0) -> list[Todo]:
        return list(await queries.list_todos(current(), limit=limit, offset=offset))

    @router.get("/todos/{todo_id}", response_model=TodoOut)
    async def get_todo(todo_id: TodoId) -> Todo:
        return await queries.get_todo(current(), todo_id=todo_id)

    @router.patch("/todos/{todo_id}", response_model=TodoOut)
    async def update_todo(todo_id: TodoId, data: TodoUpdate) -> Todo:
        session = current()
        todo = await queries.update_todo(session, todo_id=todo_id, data=data)
        await session.commit()
        return todo

    @router.delete("/todos/{todo_id}", status_code=204)
    async def delete_todo(todo_id: TodoId) -> None:
        session = current()
        await queries.delete_todo(session, todo_id=todo_id)
        await session.commit()

    @router.get("/todos/{todo_id}/multi", response_model=list[TodoOut])
    async def multi_todos(todo_id: TodoId, count: QueryCount = None) -> list[Todo]:
        return await queries.multi_todos(current(), ids=multi_ids(todo_id, count))

    return router


def injected_session_router(
    session_dep: Any, *, commit: bool = True, queries: ModuleType = queries
) -> APIRouter:
    """Handlers that receive the request's session as a parameter of type *session_dep*.

    ``commit=False`` for a strategy or library that commits the request's session itself
    (``depends_commit``: its dependency, after ``yield``): the handlers then only flush (as
    the query functions do). *queries*: a module with the
    functions of ``variants.queries`` for a library with its own model (``sqlmodel``).
    """
    router = APIRouter()

    def inject(handler: Handler) -> Handler:
        # Written against AsyncSession for the type checker; FastAPI reads the dependency here.
        handler.__annotations__["session"] = session_dep
        return handler

    @router.post("/todos", status_code=201, response_model=TodoOut)
    @inject
    async def create_todo(data: TodoCreate, response: Response, session: AsyncSession) -> Todo:
        todo = await queries.create_todo(session, data=data)
        if commit:
            await session.commit()
        response.headers["Location"] = location(todo.id)
        return todo

    @router.get("/todos", response_model=list[TodoOut])
    @inject
    async def list_todos(
        session: AsyncSession, limit: Limit = 20, offset: Offset = 0
    ) -> list[Todo]:
        return list(await queries.list_todos(session, limit=limit, offset=offset))

    @router.get("/todos/{todo_id}", response_model=TodoOut)
    @inject
    async def get_todo(todo_id: TodoId, session: AsyncSession) -> Todo:
        return await queries.get_todo(session, todo_id=todo_id)

    @router.patch("/todos/{todo_id}", response_model=TodoOut)
    @inject
    async def update_todo(todo_id: TodoId, data: TodoUpdate, session: AsyncSession) -> Todo:
        todo = await queries.update_todo(session, todo_id=todo_id, data=data)
        if commit:
            await session.commit()
        return todo

    @router.delete("/todos/{todo_id}", status_code=204)
    @inject
    async def delete_todo(todo_id: TodoId, session: AsyncSession) -> None:
        await queries.delete_todo(session, todo_id=todo_id)
        if commit:
            await session.commit()

    @router.get("/todos/{todo_id}/multi", response_model=list[TodoOut])
    @inject
    async def multi_todos(
        todo_id: TodoId, session: AsyncSession, count: QueryCount = None
    ) -> list[Todo]:
        return await queries.multi_todos(session, ids=multi_ids(todo_id, count))

    return router
