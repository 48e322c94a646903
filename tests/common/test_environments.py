"""Per-variant environments: the stamp and rebuild logic, the interpreter a server runs on,
the one-line error when a venv cannot be built, and each variant's recorded versions."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import httpx
import psutil
import pytest

import variants
from bench.common import environments, processes
from bench.common.environments import (
    Environment,
    EnvironmentBuildError,
    interpreter,
    package_versions,
)
from bench.common.server import free_port


def fake_env(tmp_path: Path, requirements: str) -> Environment:
    (tmp_path / "envs").mkdir(exist_ok=True)
    (tmp_path / "envs" / "lib.txt").write_text(requirements)
    return Environment("lib", requirements_dir=tmp_path / "envs", venvs_dir=tmp_path / "venvs")


def test_stamp_follows_the_requirements_file(tmp_path: Path) -> None:
    env = fake_env(tmp_path, "fastapi==0.141.1\n")
    assert env.python == tmp_path / "venvs" / "lib" / "bin" / "python"
    assert not env.current()  # never built
    env.python.parent.mkdir(parents=True)
    env.python.touch()
    (env.path / environments.STAMP).write_text(env.digest() + "\n")
    assert env.current()
    assert env.ensure() == env.python  # current: nothing is built
    env.requirements.write_text("fastapi==0.141.0\n")
    assert not env.current()  # changed pins: rebuilt on next use


def test_unreadable_requirements_is_a_one_line_error(tmp_path: Path) -> None:
    env = Environment("missing", requirements_dir=tmp_path, venvs_dir=tmp_path / "venvs")
    with pytest.raises(EnvironmentBuildError, match=r"^environment missing: cannot read .*") as e:
        env.ensure()
    assert "\n" not in str(e.value)


def test_failed_build_is_a_one_line_error_and_leaves_no_stamp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = fake_env(tmp_path, "fastapi ==== not a pin\n")  # pip refuses it before any download
    with pytest.raises(EnvironmentBuildError) as e:
        env.ensure()
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("environment lib: cannot install lib.txt")
    assert "Invalid requirement" in message
    assert not (env.path / environments.STAMP).exists()
    assert "building the environment of lib" in capsys.readouterr().err


def test_main_environment_variants_run_on_this_interpreter() -> None:
    assert interpreter(variants.get("depends")) == sys.executable


def test_own_environment_variant_is_served_by_its_venv(serve) -> None:
    variant = variants.get("fastapi_sqla")
    server = serve("fastapi_sqla")
    env = Environment(variant.environment or "")
    assert env.current()
    assert psutil.Process(server.pid).cmdline()[0] == str(env.python)


def test_versions_of_a_main_environment_variant() -> None:
    versions = package_versions(variants.get("advanced_alchemy"))
    assert set(versions) == {*environments.VERSIONS_OF, "advanced-alchemy"}
    assert all(versions[name] == metadata.version(name) for name in versions)


def test_versions_of_an_own_environment_variant() -> None:
    versions = package_versions(variants.get("fastapi_sqla"))
    pins = Environment("fastapi_sqla").requirements.read_text()
    assert versions["fastapi-sqla"] == "4.0.1"
    for name in ("fastapi", "asyncpg", "sqlalchemy", "starlette", "pydantic", "uvicorn"):
        assert re.search(rf"^{name}(\[\w+\])?=={re.escape(str(versions[name]))}$", pins, re.M)
    assert versions["fastapi"] != metadata.version("fastapi")  # not the main environment's


def test_serve_from_the_main_environment_moves_to_the_variant_s_own(db, tmp_path: Path) -> None:
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.cli", "serve", "fastapi_sqla", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": db.url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/todos/1").status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(processes.tail(tmp_path / "serve.log", 15))
        python = Environment("fastapi_sqla").python
        assert psutil.Process(process.pid).cmdline()[0] == str(python)
    finally:
        processes.stop(process, signal.SIGINT, 10)
