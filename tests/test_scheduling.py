"""tests/conftest.py's scheduling tables name tests that exist.

The tables are node-id prefixes (see conftest's docstring for why): a test renamed or moved
would silently fall out of its group and run beside what it must not, or lose its place.
"""

import re
from pathlib import Path

import pytest

import variants
from tests import conftest

ROOT = Path(__file__).resolve().parent.parent


def names_a_test(prefix: str) -> bool:
    """A prefix names a file or folder, or the start of a test function's name in a file."""
    path, _, name = prefix.partition("::")
    if not name:
        return (ROOT / path).exists()
    name = name.split("[", 1)[0]
    file = ROOT / path
    return file.is_file() and bool(
        re.search(rf"^(async )?def {re.escape(name)}", file.read_text(), re.MULTILINE)
    )


@pytest.mark.parametrize("prefix", list(conftest.GROUPS))
def test_every_group_prefix_names_a_test(prefix: str) -> None:
    assert names_a_test(prefix), f"{prefix} names no test: update tests/conftest.py"


@pytest.mark.parametrize("entry", list(conftest.FIRST))
def test_every_first_entry_is_a_group_or_names_a_test(entry: str) -> None:
    contract = entry.startswith("contract-") and entry.split("-", 1)[1] in variants.VARIANTS
    assert entry in conftest.GROUPS.values() or contract or names_a_test(entry), entry


def test_groups_of_node_ids() -> None:
    some = next(prefix for prefix, group in conftest.GROUPS.items() if group == "timing")
    assert conftest.group_of(some + "x[1]") == "timing"
    contract = conftest.CONTRACT + "test_variant_serves_contract[scoped-create]"
    assert conftest.group_of(contract) == "contract-scoped"
    assert conftest.group_of("tests/test_cli.py::test_x") == "tests/test_cli.py::test_x"


def test_first_ranks_groups_and_prefixes_of_node_ids() -> None:
    assert conftest.first_rank(conftest.FIRST[0]) == 0
    long_one = next(entry for entry in conftest.FIRST if "::" in entry)
    assert conftest.first_rank(long_one + "_and_more[1]") == conftest.FIRST.index(long_one)
    assert conftest.first_rank("tests/test_cli.py::test_x") == len(conftest.FIRST)
