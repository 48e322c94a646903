"""read: GET /todos/{id} of a random seeded todo."""

import random

from locust import FastHttpUser, constant, task

from bench.load.recorder import SEED_ROWS


class Reader(FastHttpUser):
    wait_time = constant(0)

    @task
    def get_todo(self) -> None:
        self.client.get(f"/todos/{random.randint(1, SEED_ROWS)}", name="/todos/{id}")
