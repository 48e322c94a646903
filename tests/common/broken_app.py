"""A deliberately broken variant for tests: ``depends`` answering 200 to creates and deletes."""

from starlette.types import Message, Receive, Scope, Send

from variants.depends import app as depends_app


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    async def wrong_status(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in (201, 204):
            message = {**message, "status": 200}
        await send(message)

    await depends_app(scope, receive, wrong_status)
