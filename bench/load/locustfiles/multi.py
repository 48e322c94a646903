"""multi: GET /todos/{id}/multi?queries=10, ten primary-key reads in one session."""

import random

from locust import FastHttpUser, constant, task

from bench.load.recorder import SEED_ROWS


class MultiReader(FastHttpUser):
    wait_time = constant(0)

    @task
    def multi(self) -> None:
        first = random.randint(1, SEED_ROWS - 9)
        self.client.get(f"/todos/{first}/multi?queries=10", name="/todos/{id}/multi?queries=10")
