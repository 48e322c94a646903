"""The per-request machinery alone: one ASGI call of a no-op endpoint, no database I/O.

``plain`` is the FastAPI floor; the others add exactly one strategy's per-request
work (the scoped middleware, with and without the lazy session being created, and as a
BaseHTTPMiddleware; the yield dependency solved by FastAPI, in request and function
scope; an ``async with`` session in the handler), as each variant's ``Micro`` declares them:
``bench.common.micro_ops.build``.
"""

import pytest

from bench.common.micro_ops import asgi_call, build, label, machinery


@pytest.mark.parametrize("name", list(machinery()))
def test_machinery(name: str, measure, benchmark) -> None:
    benchmark.group = "machinery"
    benchmark.extra_info["label"] = label(name)
    statuses: list[int] = []
    measure(asgi_call(build(name), statuses), batch=1000)
    assert set(statuses) == {200}
