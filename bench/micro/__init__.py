"""Micro-benchmarks (pytest-benchmark): what creating, using and removing a session costs.

Method. pytest-benchmark has no async support, so every benchmark runs coroutines on
one long-lived uvloop event loop (like the servers) from a sync wrapper. Each round
runs a batch of N operations inside a single ``loop.run_until_complete`` so the
loop's own entry cost is spread over N; the benchmark's timer is
``perf_counter() / N``, so pytest-benchmark's statistics (and its JSON, and
``pytest-benchmark compare``) are per operation. One warm-up batch precedes the
rounds (10, ``conftest.ROUNDS``; 5 with ``--quick``). The process is pinned to one core and
PostgreSQL (embedded, or ``DATABASE_URL``) to the other(s) where the machine has two.

Groups: ``lifecycle`` (construct + close, no I/O), ``select1`` and ``get`` (with one
``SELECT 1`` / one primary-key ``get``), ``registry`` (the scoped proxy on a hit),
``machinery`` (one ASGI call of a no-op endpoint: middleware or dependency solving
alone), ``request-<endpoint>`` (see ``GROUPS``).
"""

GROUPS = {
    "request-*": (
        "wall-clock time per HTTP request served in-process (httpx.ASGITransport: no network, "
        "no uvicorn), including the app's PostgreSQL round trips; request-write is the mean of "
        "the POST, PATCH and DELETE of a write cycle (the cycle's time / 3)"
    ),
}
"""What each group measures, where its name alone would mislead (the report prints it)."""
