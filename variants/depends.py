"""Depends: a yield dependency gives each request its own AsyncSession (``SessionDep``).

The FastAPI-documented pattern (full-stack-fastapi-template): the dependency opens the
session, handlers commit their writes, and the dependency's exit closes the session
(rolling back anything uncommitted) after the handler returns.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.ext.asyncio import AsyncSession

from variants import queries
from variants.app import create_app, location
from variants.engine import Session, lifespan
from variants.models import Todo
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


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

router = APIRouter()


@router.post("/todos", status_code=201, response_model=TodoOut)
async def create_todo(data: TodoCreate, response: Response, session: SessionDep) -> Todo:
    todo = await queries.create_todo(session, data=data)
    await session.commit()
    response.headers["Location"] = location(todo.id)
    return todo


@router.get("/todos", response_model=list[TodoOut])
async def list_todos(session: SessionDep, limit: Limit = 20, offset: Offset = 0) -> list[Todo]:
    return list(await queries.list_todos(session, limit=limit, offset=offset))


@router.get("/todos/{todo_id}", response_model=TodoOut)
async def get_todo(todo_id: TodoId, session: SessionDep) -> Todo:
    return await queries.get_todo(session, todo_id=todo_id)


@router.patch("/todos/{todo_id}", response_model=TodoOut)
async def update_todo(todo_id: TodoId, data: TodoUpdate, session: SessionDep) -> Todo:
    todo = await queries.update_todo(session, todo_id=todo_id, data=data)
    await session.commit()
    return todo


@router.delete("/todos/{todo_id}", status_code=204)
async def delete_todo(todo_id: TodoId, session: SessionDep) -> None:
    await queries.delete_todo(session, todo_id=todo_id)
    await session.commit()


@router.get("/todos/{todo_id}/multi", response_model=list[TodoOut])
async def multi_todos(todo_id: TodoId, session: SessionDep, count: QueryCount = None) -> list[Todo]:
    return await queries.multi_todos(session, ids=multi_ids(todo_id, count))


app = create_app(router, lifespan=lifespan)
