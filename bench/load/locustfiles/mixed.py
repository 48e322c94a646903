"""mixed: 80 % single reads, 10 % list pages, 10 % writes (create, update, delete own)."""

import random

from locust import FastHttpUser, constant, task

from bench.load.recorder import SEED_ROWS


class Visitor(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.mine: list[int] = []
        self.edits = 0

    @task(16)
    def get_todo(self) -> None:
        self.client.get(f"/todos/{random.randint(1, SEED_ROWS)}", name="/todos/{id}")

    @task(2)
    def list_page(self) -> None:
        offset = random.randrange(0, SEED_ROWS, 20)
        self.client.get(f"/todos?limit=20&offset={offset}", name="/todos?limit=20")

    @task(1)
    def create(self) -> None:
        created = self.client.post("/todos", json={"title": "mixed"}, name="/todos")
        if created.status_code == 201:
            self.mine.append(created.json()["id"])

    @task(1)
    def update_or_delete(self) -> None:
        if not self.mine:
            return
        if random.random() < 0.5:
            self.edits += 1  # a new title every time: the ORM skips UPDATEs that change nothing
            title = {"title": f"edit {self.edits}"}
            self.client.patch(f"/todos/{self.mine[-1]}", json=title, name="/todos/{id}")
        else:
            self.client.delete(f"/todos/{self.mine.pop()}", name="/todos/{id}")
