"""Reading callgrind dumps per function and explaining a difference (``bench.cost.callgrind``,
``profile``, ``explain``): a hand-written dump for the format, a real one of a tiny script.
The explain of a real cost run (context vs depends) is in test_cost, on its shared run."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common.result_files import CostRow
from bench.cost.callgrind import parse
from bench.cost.explain import compare_profiles
from bench.cost.packages import group_of, package_of
from bench.cost.profile import RESIDUE, SCHEMA, Profile, from_dumps, load, save

HAVE_VALGRIND = bool(shutil.which("valgrind"))
NO_VALGRIND = (
    "valgrind is not installed, and scripts/test could not install it here (it needs root and "
    "apt-get): apt-get install valgrind"
)

# name compression: (1) defined by ob=, reused by cob=; (3) by fn=, reused by cfn=; relative
# positions (+2, *); main calls helper (inclusive 70) and itself at level 2 (main'2)
DUMP = """# callgrind format
version: 1
positions: line
events: Ir
summary: 200
desc: Trigger: dump test

ob=(1) /usr/lib/libpython3.11.so.1.0
fl=(1) /build/Python/ceval.c
fn=(1) main
10 5
+2 5
cfn=(2) helper
calls=3 20
* 70
cfn=(3) main'2
calls=1 10
* 40
fl=(2) /build/Objects/dictobject.c
fn=(2)
20 60
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfl=(3) memcpy.S
cfn=(4) memcpy
calls=2 1
0 10
fl=(1)
fn=(3)
10 30
cfn=(2)
calls=1 20
* 10
ob=(2)
fl=(3)
fn=(4)
0 10

totals: 110
"""


def test_name_compression_self_and_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "callgrind.out.1"
    path.write_text(DUMP)
    dump = parse(path)
    assert (dump.summary, dump.totals, dump.trigger) == (200, 110, "dump test")
    libpython, libc = "/usr/lib/libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libc.so.6"
    main = dump.functions[(libpython, "main")]
    helper = dump.functions[(libpython, "helper")]  # (2) reused by the bare fn=(2)
    memcpy = dump.functions[(libc, "memcpy")]  # ob=(2) reuses the name cob=(2) defined
    assert (main.self, main.inclusive) == (10 + 30, 10 + 70 + 40)  # main'2 merged into main
    assert (helper.self, helper.inclusive) == (60, 70)
    assert (memcpy.self, memcpy.inclusive) == (10, 10)
    assert main.file.endswith("ceval.c") and helper.file.endswith("dictobject.c")
    assert set(dump.functions) == {(libpython, "main"), (libpython, "helper"), (libc, "memcpy")}
    assert sum(f.self for f in dump.functions.values()) == dump.totals


def test_groups_by_object_and_cpython_file() -> None:
    site = "/x/.venv/lib/python3.11/site-packages"
    assert group_of(f"{site}/asyncpg/protocol/protocol.cpython-311.so", "") == "asyncpg"
    assert group_of(f"{site}/psycopg_c/_psycopg.so", "") == "psycopg"
    assert group_of("/p/lib/python3.11/lib-dynload/_asyncio.cpython-311.so", "") == "asyncio (C)"
    lib = "/p/lib/libpython3.11.so.1.0"
    assert group_of(lib, "/b/Python/ceval.c") == "interpreter: eval loop"
    assert group_of(lib, "/b/Modules/gcmodule.c") == "interpreter: GC"
    assert group_of(lib, "/b/Objects/obmalloc.c") == "interpreter: allocator"
    assert group_of(lib, "/b/Objects/dictobject.c") == "interpreter: objects"
    assert package_of("interpreter: GC") == "interpreter" and package_of("uvloop") == "uvloop"


def _profile(variant: str, groups: dict[str, float]) -> Profile:
    functions = [("f", "libpython3", "interpreter: eval loop", groups["interpreter: eval loop"],
                  sum(groups.values()))]  # fmt: skip
    return Profile(
        schema=SCHEMA, variant=variant, endpoint="get", clients=1, requests=10, repeats=3,
        instructions_per_request=sum(groups.values()), groups=groups, functions=functions,
        cutoff=(0.0, 0.0),
    )  # fmt: skip


def _row(variant: str, instructions: float) -> CostRow:
    return CostRow(variant=variant, endpoint="get", instructions_per_request=instructions,
                   spread_percent=0.1)  # fmt: skip


def test_explain_adds_up_only_within_the_spreads(tmp_path: Path) -> None:
    a = _profile("depends", {"interpreter: eval loop": 1200.0, "asyncpg": 300.0})
    b = _profile("context", {"interpreter: eval loop": 1000.0, "asyncpg": 310.0})
    row_b = _row("context", 1310.0)
    close = compare_profiles(a, b, _row("depends", 1500.5), row_b)
    assert close.grouped_diff == pytest.approx(190.0) and close.adds_up()
    assert [p.name for p in close.packages] == ["interpreter", "asyncpg"]
    assert close.by_self[0].self_diff == pytest.approx(200.0)
    assert not close.functions  # f holds every request: left out of the inclusive ranking
    far = compare_profiles(a, b, _row("depends", 1530.0), row_b)
    assert not far.adds_up()  # 30 off, the spreads allow 1.5 + 1.3
    save(a, tmp_path)
    loaded = load(tmp_path, "depends", "get", 1)
    assert loaded is not None and loaded.groups == a.groups and loaded.functions == a.functions


@pytest.mark.skipif(not HAVE_VALGRIND, reason=NO_VALGRIND)
def test_a_real_dump_adds_up_by_group(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    script = "import json\nfor i in range(2000): json.dumps({'a': [i, str(i)]})\n"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-line=no",
         f"--callgrind-out-file={out}", sys.executable, "-c", script],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    dump = parse(out)
    assert dump.summary > 1_000_000 and dump.totals == dump.summary
    assert sum(f.self for f in dump.functions.values()) == dump.summary
    profile = from_dumps([dump], variant="script", endpoint="get", clients=1, requests=1)
    assert profile.groups[RESIDUE] == 0
    assert sum(profile.groups.values()) == pytest.approx(dump.summary, abs=20)  # 0.1 each
    eval_loop = [f for f in profile.functions if f[0] == "_PyEval_EvalFrameDefault"]
    assert eval_loop and eval_loop[0][2] == "interpreter: eval loop"
    assert any(g.startswith("interpreter:") for g in profile.groups)
    assert "stdlib C modules" in profile.groups  # _json's encoder is a lib-dynload module
