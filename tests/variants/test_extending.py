"""The extension points of ``docs/extending.md``: a variant (inside the suite, from a file, from
an entry point), a pitfall scenario, a colour per variant name.

The worked example, ``docs/examples/my_variant.py``, runs through ``verify``, a quick load
run, ``cost``, ``micro`` and the pitfall matrix with ``--variant`` only: no file of the suite
is edited for it (the slow tests at the end).
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import variants
from bench.cli import build_parser
from bench.common import colours, micro_ops
from bench.common.arguments import load_variant_files, with_external
from bench.cost.operations import selection
from bench.cost.operations_hook import GROUPS, catalogue
from bench.pitfalls import scenarios
from bench.pitfalls.command import PITFALL_KINDS
from variants import Micro, Variant, external
from variants.settings import DatabaseUrl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "my_variant.py"
CLI = [sys.executable, "-m", "bench.cli"]
HAVE_VALGRIND = bool(shutil.which("valgrind") and shutil.which("vgdb"))


def cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files this test loads stay this test's: the finder's table, the environment
    variable child processes would inherit, the registry."""
    monkeypatch.setattr(external._finder, "files", {})
    monkeypatch.setenv(external.FILES_ENV, "")
    monkeypatch.setenv(external.MODULES_ENV, "")
    monkeypatch.setattr(variants, "VARIANTS", dict(variants.VARIANTS))


# --- a variant inside the suite: one module, one registry entry ---------------------------

PROBE_MODULE = '''\
"""Depends, begin(): the yield dependency opens a transaction the handler's writes join."""

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from variants.app import create_app
from variants.engine import Session, lifespan
from variants.lab import depends_lab_router
from variants.micro import Use, dependency_app
from variants.routes import injected_session_router


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session.begin() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
router = injected_session_router(SessionDep, commit=False)
router.include_router(depends_lab_router(SessionDep, commit=False))
app = create_app(router, lifespan=lifespan)


async def micro_session(use: Use) -> None:
    """depends_begin: drive its yield dependency (open, begin, yield, commit, close)"""
    dependency = aiter(get_session())
    await use(await anext(dependency))
    with contextlib.suppress(StopAsyncIteration):
        await anext(dependency)


def micro_app(name: str) -> FastAPI:
    return dependency_app(SessionDep)
'''
PROBE_ENTRY = Variant(
    "depends_begin", "depends_begin", "strategy", micro=Micro(True, ("depends-begin",))
)


@pytest.fixture
def added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Variant:
    """The module and its one registry entry (``variants/depends_begin.py`` in the suite)."""
    (tmp_path / "depends_begin.py").write_text(PROBE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(variants.VARIANTS, PROBE_ENTRY.name, PROBE_ENTRY)
    return PROBE_ENTRY


def test_an_added_variant_joins_micro_cost_and_the_matrix_with_nothing_else_edited(
    added: Variant,
) -> None:
    assert micro_ops.session_names()[-2:] == ["depends_begin", "bare"]  # the floor stays last
    assert micro_ops.machinery()["depends-begin"] == "depends_begin"
    assert micro_ops.strategy_label("depends_begin") == (
        "depends_begin: drive its yield dependency (open, begin, yield, commit, close)"
    )
    chosen, skipped = selection(["depends_begin"], list(GROUPS))
    assert skipped == {}
    assert {(op.group, op.name) for op in chosen} == {
        *((g, "depends_begin") for g in GROUPS if g != "machinery"),
        ("machinery", "depends-begin"),
    }
    strategies = [v.name for v in variants.VARIANTS.values() if v.kind in PITFALL_KINDS]
    assert "depends_begin" in strategies  # the matrix's default selection
    assert "depends_begin" in variants.measured()  # the load run's --full selection
    assert added.label.startswith("Depends, begin()")


def test_a_variant_without_micro_operations_is_skipped_with_its_reason() -> None:
    assert selection(["scoped_task"], list(GROUPS))[1] == {
        "scoped_task": "declares no micro-benchmark operation (Variant.micro)"
    }


def _functions(variant: Variant) -> set[str]:
    source = Path(variant.module.replace(".", "/") + ".py")
    tree = ast.parse((ROOT / source).read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


@pytest.mark.parametrize(
    "name", [n for n, v in variants.VARIANTS.items() if v.micro != Micro() and variants.built_in(n)]
)
def test_what_a_variant_declares_its_module_defines(name: str) -> None:
    """The declaration is read without importing; the code it names must be there."""
    variant = variants.get(name)
    defined = _functions(variant)
    if variant.micro.session:
        assert "micro_session" in defined
        assert (variant.doc_of("micro_session") or "").startswith(f"{name}: ")
    assert ("micro_app" in defined) == bool(variant.micro.machinery)


def test_the_catalogue_is_what_the_variants_declare() -> None:
    """Every declared operation is counted by ``cost``, nothing else (floors aside)."""
    declared = {
        (group, name)
        for name, v in variants.VARIANTS.items()
        if v.micro.session
        for group in GROUPS
        if group != "machinery"
    } | {("machinery", op) for v in variants.VARIANTS.values() for op in v.micro.machinery}
    floors = {(g, "bare") for g in GROUPS if g != "machinery"} | {("machinery", "plain")}
    assert {(op.group, op.name) for op in catalogue()} == declared | floors


# --- your own variant: a file ---------------------------------------------------------------


def test_the_example_is_declared_without_running_it(isolated: None) -> None:
    variant = external.from_file(EXAMPLE)
    assert variant == Variant(
        "mine", "my_variant", "strategy", micro=Micro(session=True, machinery=("mine",))
    )
    assert variant.label.startswith("Mine: a yield dependency")
    assert variant.doc_of("micro_session") == (
        "mine: drive the yield dependency get_session (open, yield, close)"
    )
    assert "my_variant" not in sys.modules  # read, not imported (its import needs a database)


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize(
    ("file", "body", "says"),
    [
        ("nodecl.py", "app = None\n", "declares no VARIANT = Variant(...)"),
        ("computed.py", "VARIANT = make()\n", "must be built from literals"),
        ("elsewhere.py", 'VARIANT = Variant("x", "other", "strategy")\n', "write __name__"),
        ("odd.py", 'VARIANT = Variant("x", __name__, "odd")\n', "kind 'odd' is not one of"),
        ("json.py", 'VARIANT = Variant("x", __name__, "strategy")\n', "'json' is taken by"),
        ("own.py", 'VARIANT = Variant("x", __name__, "strategy", environment="e")\n', "no env"),
        ("notpython.txt", "", "is not a .py file"),
    ],
)
def test_a_bad_variant_file_is_one_line_saying_why(
    file: str, body: str, says: str, tmp_path: Path, isolated: None
) -> None:
    with pytest.raises(external.ExternalVariantError, match=re.escape(says)) as caught:
        external.from_file(_write(tmp_path, file, body))
    assert "\n" not in str(caught.value)


def test_a_file_cannot_take_a_built_in_variants_name(tmp_path: Path, isolated: None) -> None:
    path = _write(tmp_path, "mine2.py", 'VARIANT = Variant("depends", __name__, "strategy")\n')
    with pytest.raises(external.ExternalVariantError, match="the name 'depends' is taken"):
        external.use_files([path], dict(variants.VARIANTS))


def test_a_bad_file_on_the_command_line_is_exit_2_in_one_line(tmp_path: Path) -> None:
    result = cli("verify", "--variant", str(tmp_path / "missing.py"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not a .py file" in result.stderr


def test_the_example_is_listed_by_a_child_process() -> None:
    result = cli("variants", "--long", "--variant", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "mine\tstrategy\tMine: a yield dependency" in result.stdout
    assert cli("variants").stdout.split() == list(variants.VARIANTS)  # nothing left behind


def test_every_command_of_the_docs_takes_the_example(isolated: None) -> None:
    """Each ``sessionbench`` line of docs/extending.md parses, the example's name known."""
    doc = (ROOT / "docs" / "extending.md").read_text()
    lines = [line.split()[1:] for line in doc.splitlines() if line.startswith("sessionbench ")]
    commands = {argv[0] for argv in lines}
    assert commands == {"variants", "verify", "run", "cost", "pitfalls", "micro", "serve"}
    for argv in lines:
        argv = [str(ROOT / a) if a.endswith(".py") else a for a in argv]
        load_variant_files(argv)
        args = build_parser().parse_args(argv)
        assert args.variant_files == [EXAMPLE]
    assert os.environ[external.FILES_ENV] == str(EXAMPLE)  # what child processes inherit
    assert with_external(["context"]) == ["context", "mine"]  # run's and cost's defaults


# --- your own variant: an installed package's entry point -----------------------------------


def test_an_entry_point_adds_its_variant_to_the_registry(tmp_path: Path) -> None:
    package = tmp_path / "mine_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "variant.py").write_text(EXAMPLE.read_text())
    info = tmp_path / "mine_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mine-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[sessionbench.variants]\nmine = mine_pkg.variant\n")
    result = cli("variants", "--long", PYTHONPATH=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "mine\tstrategy\tMine: a yield dependency" in result.stdout
    (info / "entry_points.txt").write_text("[sessionbench.variants]\nother = mine_pkg.variant\n")
    result = cli("variants", PYTHONPATH=str(tmp_path))
    assert result.returncode == 0 and "mine" not in result.stdout.split()
    assert "entry point other left out" in result.stderr and "named 'mine'" in result.stderr


# --- colours ----------------------------------------------------------------------------------


def test_a_colour_and_marker_stay_with_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    before = {name: colours.style(name) for name in variants.VARIANTS}
    reordered = dict(reversed(variants.VARIANTS.items()))
    monkeypatch.setattr(variants, "VARIANTS", {"first_now": PROBE_ENTRY, **reordered})
    assert {name: colours.style(name) for name in before} == before
    fixed = set(colours.FIXED.values())
    assert len(fixed) == len(colours.FIXED)  # never shared among the built-in ones
    assert colours.style("mine") not in fixed and colours.style("first_now") not in fixed
    other = subprocess.run(
        [sys.executable, "-c", "from bench.common import colours; print(colours.style('mine'))"],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "123"}, check=True,
    )  # fmt: skip
    assert other.stdout.strip() == str(colours.style("mine"))  # the same in every process


# --- a pitfall scenario -----------------------------------------------------------------------


def test_scenarios_register_in_run_order_with_what_the_matrix_needs() -> None:
    names = list(scenarios.REGISTRY)
    assert names == list(scenarios.SCENARIOS) and names[-1] == "pg_restart"
    assert dict(scenarios.SHARED) == {"pg_restart": scenarios.pg_restart_shared}
    assert (
        scenarios.FRESH_SERVER == scenarios.REPEATED == scenarios.PRE_PING_SWEEP == {"pg_restart"}
    )
    assert set(scenarios.BRIEF) == set(names)
    # The advice's two kinds split the scenarios: each is one or the other.
    assert set(scenarios.CONDITIONS) | set(scenarios.UNCONDITIONAL) == set(names)
    assert not set(scenarios.CONDITIONS) & set(scenarios.UNCONDITIONAL)


def test_a_new_scenario_is_one_decorated_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenarios, "REGISTRY", dict(scenarios.REGISTRY))

    @scenarios.scenario(brief=lambda n: f"{n['held']} held", condition="no long handlers")
    async def long_handler(target: Any) -> scenarios.Outcome:
        """A handler that takes its time: what it holds meanwhile."""
        raise NotImplementedError

    found = scenarios.REGISTRY["long_handler"]
    assert found.probe is long_handler and found.brief is not None
    assert found.brief({"held": 2}) == "2 held"
    assert scenarios.label(found.probe) == "A handler that takes its time: what it holds meanwhile"
    with pytest.raises(ValueError, match="registered twice"):
        scenarios.scenario()(long_handler)


# --- the example through every command (servers, PostgreSQL, valgrind) ----------------------


def _run(*args: str, db: DatabaseUrl, timeout: float) -> subprocess.CompletedProcess[str]:
    result = cli(*args, "--variant", str(EXAMPLE), timeout=timeout, DATABASE_URL=db.url)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.mark.slow
def test_the_example_passes_verify(db: DatabaseUrl) -> None:
    result = _run("verify", "mine", db=db, timeout=120)
    assert "mine" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_example_in_a_quick_load_run(db: DatabaseUrl, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(
        "run", "--variants", "mine,context", "--scenarios", "read", "--users", "4",
        "--trials", "1", "--duration", "0.5", "--warmup", "0.2", "--no-co", "--out", str(out),
        db=db, timeout=180,
    )  # fmt: skip
    doc = json.loads((out / "run.json").read_text())
    assert doc["settings"]["variants"] == ["mine", "context"]
    cells = {cell["variant"]: cell for cell in doc["cells"]}
    assert set(cells) == {"mine", "context"}
    assert cells["mine"]["requests"] > 0  # served and measured (validity depends on the machine)
    assert doc["variants"]["mine"]["label"].startswith("Mine:")
    assert doc["variants"]["mine"]["verify"]["passed"]  # the run's own contract check


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_VALGRIND, reason="valgrind is not installed")
def test_the_example_in_cost(db: DatabaseUrl, tmp_path: Path) -> None:
    out = tmp_path / "cost"
    _run(
        "cost", "--variants", "mine", "--endpoints", "get", "--clients", "1", "--requests", "8",
        "--repeats", "2", "--operations", "session-lifecycle,machinery", "--out", str(out),
        db=db, timeout=400,
    )  # fmt: skip
    doc = json.loads((out / "cost.json").read_text())
    assert doc["status"] == "complete"
    rows = doc.get("rows") or doc.get("cells")
    assert [(r["variant"], r["endpoint"]) for r in rows] == [("mine", "get")]
    assert rows[0]["instructions_per_request"] > 0
    ops = {(r["variant"], r["group"]): r for r in doc["operations"]}
    assert set(ops) == {("mine", "session-lifecycle"), ("mine", "machinery")}
    assert ops["mine", "session-lifecycle"]["operation"].startswith("mine: drive the yield")
    assert doc["operations_skipped"] == {}


@pytest.mark.slow
def test_the_example_in_the_pitfall_matrix(db: DatabaseUrl, tmp_path: Path) -> None:
    out = tmp_path / "pitfalls"
    _run(
        "pitfalls", "--variants", "mine", "--scenarios", "handler_error", "--out", str(out),
        db=db, timeout=180,
    )  # fmt: skip
    doc = json.loads((out / "pitfalls.json").read_text())
    [cell] = doc["cells"]
    assert (cell["variant"], cell["scenario"]) == ("mine", "handler_error")
    # A failed request writes nothing: its lab endpoints were mounted and behaved.
    assert cell["outcome"] == "ok" and cell["numbers"]["rows_written"] == 0


@pytest.mark.slow
def test_the_example_in_micro(db: DatabaseUrl, tmp_path: Path) -> None:
    out = tmp_path / "micro"
    select = "(test_session and lifecycle and mine) or (test_machinery and mine)"
    _run("micro", "--quick", "-k", select, "--out", str(out), db=db, timeout=180)
    found = json.loads((out / "micro.json").read_text())["benchmarks"]
    assert {(b["group"], b["param"]) for b in found} == {
        ("lifecycle", "lifecycle-mine"),
        ("machinery", "mine"),
    }
