"""The per-request machinery alone: one ASGI call of a no-op endpoint, no database I/O.

``plain`` is the FastAPI floor; the others add exactly one strategy's per-request
work (the scoped middleware, with and without the lazy session being created, and as a
BaseHTTPMiddleware; the yield dependency solved by FastAPI, in request and function
scope; an ``async with`` session in the handler): ``bench.common.micro_ops.build``.
"""

import pytest

from bench.common.micro_ops import VARIANT_OF, asgi_call, build, label


@pytest.mark.parametrize("name", list(VARIANT_OF))
def test_machinery(name: str, measure, benchmark) -> None:
    benchmark.group = "machinery"
    benchmark.extra_info["label"] = label(name)
    statuses: list[int] = []
    measure(asgi_call(build(name), statuses), batch=1000)
    assert set(statuses) == {200}
