"""A known extra cost per request, for calibration series (``context_plus5``, ``context_plus10``).

A comparison design is only proven sensitive if it finds a difference that is known in
advance. ``Burden`` wraps an app and, before each HTTP request, runs a fixed amount of
pure-Python work (``iterations`` turns of a loop of ordinary interpreter operations).
Its size is stated in instructions by ``sessionbench cost``, which counts the calibration
variants like any other: the instruction ratio against ``context`` is the prediction that
the wall-clock comparisons must reproduce.
"""

from starlette.types import ASGIApp, Receive, Scope, Send


def burn(iterations: int) -> int:
    """Ordinary interpreter work (arithmetic, a dict, a string), *iterations* times."""
    seen: dict[int, str] = {}
    total = 0
    for i in range(iterations):
        text = str(i)
        seen[i & 63] = text
        total += len(text) + (i % 7)
    return total + len(seen)


class Burden:
    """Run :func:`burn` before each HTTP request, then the wrapped app unchanged."""

    def __init__(self, app: ASGIApp, iterations: int) -> None:
        self.app = app
        self.iterations = iterations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            burn(self.iterations)
        await self.app(scope, receive, send)
