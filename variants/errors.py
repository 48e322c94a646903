"""Errors the shared query functions raise, mapped to HTTP by ``variants.app``."""


class TodoNotFound(LookupError):
    def __init__(self, todo_id: int) -> None:
        super().__init__(f"todo {todo_id} not found")
        self.todo_id = todo_id
