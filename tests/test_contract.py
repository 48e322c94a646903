"""The contract suite: every check of ``bench.common.verify`` against every registered variant."""

import httpx
import pytest

import variants
from bench.common.verify import CHECKS, Check, Context, run_check


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_variant_serves_contract(name: str, check: Check, serve, db) -> None:
    server = serve(name)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        outcome = run_check(check, Context(client, db))
    assert outcome.ok, f"{name} fails {outcome.label!r}: {outcome.error}"
    assert server.alive(), server.log_tail()
