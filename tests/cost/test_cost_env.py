"""What a counted process sees of its caller: the same-sized environment and working
directory whatever shell, run folder or lane started it (``bench.cost.valgrind``)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cost.valgrind import COUNTED_ENV, counted_cwd, counted_env

PROBE = "import os; print(repr(sorted(os.environ.items()))); print(os.getcwd())"


def _child(cwd: Path, extra: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=counted_env(extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_caller_variables_stay_out_settings_and_extras_go_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLDPWD", "/some/where/else/entirely")
    monkeypatch.setenv("VIRTUAL_ENV", "/home/user/project/.venv")
    monkeypatch.setenv("SESSIONBENCH_POOL_SIZE", "7")
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    env = counted_env({"DATABASE_URL": "postgresql://x@/db"})
    assert "OLDPWD" not in env and "VIRTUAL_ENV" not in env
    assert env["SESSIONBENCH_POOL_SIZE"] == "7"
    assert env["DATABASE_URL"] == "postgresql://x@/db"
    assert env.items() >= COUNTED_ENV.items()


def test_two_callers_give_a_child_the_same_sized_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = []
    for shell_dir in ("/a", "/a/much/longer/directory/of/the/caller"):
        monkeypatch.setenv("PWD", shell_dir)
        monkeypatch.setenv("OLDPWD", shell_dir)
        cwd = counted_cwd()
        try:
            seen.append(_child(cwd, {"SESSIONBENCH_APP_NAME": "cost-context-40001"}))
        finally:
            shutil.rmtree(cwd)
    first, second = (s.splitlines() for s in seen)
    assert len(first[0]) == len(second[0])  # the environment's items, lengths alike
    assert "/a/much" not in second[0]
    assert len(first[1]) == len(second[1])  # the working directory (in sys.path under -m)
    assert first[1] != second[1]  # and each its own
