"""write: POST a todo, PATCH it, DELETE it."""

from locust import FastHttpUser, constant, task

import bench.load.recorder  # noqa: F401  (records every request)


class Writer(FastHttpUser):
    wait_time = constant(0)

    @task
    def create_update_delete(self) -> None:
        created = self.client.post("/todos", json={"title": "load test"}, name="/todos")
        if created.status_code != 201:
            return
        url = f"/todos/{created.json()['id']}"
        self.client.patch(url, json={"done": True}, name="/todos/{id}")
        self.client.delete(url, name="/todos/{id}")
