"""The contract suite: every check of ``bench.common.verify`` against every registered variant.

A variant that ``commits_after_response`` (``depends_commit``) breaks one rule by design: a
2xx write is committed only after its response was sent, so a check's next read can race
the COMMIT. Its client waits after each response until the server has no transaction open,
so every *other* rule is checked here; that the broken rule is broken is shown by
``tests/variants/test_new_variants.py`` (a slowed COMMIT) and the pitfall tests (``acknowledged``).
"""

import contextlib
import time
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest

import variants
from bench.common.server import VariantServer
from bench.common.verify import CHECKS, Check, Context, run_check
from variants.settings import DatabaseUrl

OPEN = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state <> 'idle'"
COMMIT_WAIT = 10.0  # s: a COMMIT that has not ended by then fails the check


@contextlib.contextmanager
def commits_waited(server: VariantServer, db: DatabaseUrl) -> Iterator[httpx.Client]:
    """A client that, after every response, waits until the server's transactions ended."""
    with psycopg.connect(db.url, autocommit=True) as conn:

        def wait(response: httpx.Response) -> None:
            response.read()  # the commit runs after the last byte was sent
            deadline = time.monotonic() + COMMIT_WAIT
            while conn.execute(OPEN, (server.app_name,)).fetchone() != (0,):
                assert time.monotonic() < deadline, "the server's transaction did not end"
                time.sleep(0.002)

        hooks = {"response": [wait]}
        with httpx.Client(base_url=server.base_url, timeout=30, event_hooks=hooks) as client:
            yield client


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_variant_serves_contract(
    name: str, check: Check, serve: Callable[[str], VariantServer], db: DatabaseUrl
) -> None:
    server = serve(name)
    if variants.get(name).commits_after_response:
        client: contextlib.AbstractContextManager[httpx.Client] = commits_waited(server, db)
    else:
        client = httpx.Client(base_url=server.base_url, timeout=30)
    with client as http:
        outcome = run_check(check, Context(http, db))
    assert outcome.ok, f"{name} fails {outcome.label!r}: {outcome.error}"
    assert server.alive(), server.log_tail()
