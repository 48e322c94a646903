"""Context: each handler opens its own session with ``async with`` (``begin()`` for writes).

The TechEmpower FastAPI ORM pattern: the session's lifetime is exactly the block in
the handler, so the connection is back in the pool before the response is serialised.
"""

from fastapi import APIRouter, FastAPI, Response

from variants import queries
from variants.app import create_app, location
from variants.engine import Session, lifespan
from variants.lab import context_lab_router
from variants.micro import Use
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

router = APIRouter()


@router.post("/todos", status_code=201, response_model=TodoOut)
async def create_todo(data: TodoCreate, response: Response) -> Todo:
    async with Session.begin() as session:
        todo = await queries.create_todo(session, data=data)
    response.headers["Location"] = location(todo.id)
    return todo


@router.get("/todos", response_model=list[TodoOut])
async def list_todos(limit: Limit = 20, offset: Offset = 0) -> list[Todo]:
    async with Session() as session:
        return list(await queries.list_todos(session, limit=limit, offset=offset))


@router.get("/todos/{todo_id}", response_model=TodoOut)
async def get_todo(todo_id: TodoId) -> Todo:
    async with Session() as session:
        return await queries.get_todo(session, todo_id=todo_id)


@router.patch("/todos/{todo_id}", response_model=TodoOut)
async def update_todo(todo_id: TodoId, data: TodoUpdate) -> Todo:
    async with Session.begin() as session:
        return await queries.update_todo(session, todo_id=todo_id, data=data)


@router.delete("/todos/{todo_id}", status_code=204)
async def delete_todo(todo_id: TodoId) -> None:
    async with Session.begin() as session:
        await queries.delete_todo(session, todo_id=todo_id)


@router.get("/todos/{todo_id}/multi", response_model=list[TodoOut])
async def multi_todos(todo_id: TodoId, count: QueryCount = None) -> list[Todo]:
    async with Session() as session:
        return await queries.multi_todos(session, ids=multi_ids(todo_id, count))


router.include_router(context_lab_router())

app = create_app(router, lifespan=lifespan)


async def micro_session(use: Use) -> None:
    """context: async with Session() as session"""
    async with Session() as session:
        await use(session)


def micro_app(name: str) -> FastAPI:
    micro = FastAPI()

    @micro.get("/op")
    async def context() -> None:
        async with Session():
            pass

    return micro
