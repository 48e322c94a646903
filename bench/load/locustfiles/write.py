"""write: POST a todo, PATCH it (a title never used before), DELETE the previous one.

Deleting the previous iteration's todo instead of this one leaves each user's last edit
in the table, where the runner checks that every acknowledged PATCH is visible.
"""

import itertools

from locust import FastHttpUser, constant, task

import bench.load.recorder  # noqa: F401  (records every request)

_edits = itertools.count()  # unique within this locust process; the user id makes it global


class Writer(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.previous: str | None = None

    @task
    def create_update_delete(self) -> None:
        created = self.client.post("/todos", json={"title": "load test"}, name="/todos")
        if created.status_code != 201:
            return
        url = f"/todos/{created.json()['id']}"
        title = f"edit {id(self)}-{next(_edits)}"
        self.client.patch(url, json={"title": title, "done": True}, name="/todos/{id}")
        if self.previous is not None:
            self.client.delete(self.previous, name="/todos/{id}")
        self.previous = url
