"""The ``--driver`` axis: settings, the registry's driver lists, the flags' errors, and a real
run on both drivers whose cells prove (from the servers' own connections) which one served."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import variants
from bench.common import drivers
from bench.report.document import build
from variants.settings import DRIVERS, DatabaseUrl, Settings

CLI = [sys.executable, "-m", "bench.cli"]
URL = "postgresql://postgres@localhost/postgres"


def _settings(monkeypatch: pytest.MonkeyPatch, driver: str | None) -> Settings:
    monkeypatch.setenv("DATABASE_URL", URL)
    if driver is None:
        monkeypatch.delenv("SESSIONBENCH_DRIVER", raising=False)
    else:
        monkeypatch.setenv("SESSIONBENCH_DRIVER", driver)
    return Settings.from_env()


def test_settings_default_to_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, None)
    assert settings.driver == "asyncpg" == DRIVERS[0]
    assert settings.engine_url.startswith("postgresql+asyncpg://")
    assert settings.connect_args == {"server_settings": {"application_name": "sessionbench"}}


def test_settings_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, "psycopg")
    assert settings.engine_url == "postgresql+psycopg://postgres@localhost/postgres"
    assert settings.connect_args == {"application_name": "sessionbench", "prepare_threshold": 0}


def test_bad_driver_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"SESSIONBENCH_DRIVER 'mysql' .*asyncpg, psycopg"):
        _settings(monkeypatch, "mysql")


def test_registry_drivers() -> None:
    assert variants.get("raw").drivers == ("asyncpg",)
    assert variants.get("fastapi_sqla").drivers == ("asyncpg",)
    for name in ("scoped", "depends", "context", "core", "advanced_alchemy"):
        assert variants.get(name).drivers == ("asyncpg", "psycopg")
    assert variants.get("sync_threadpool").drivers == ("psycopg",)  # sync: no asyncpg
    assert all(v.driver == "asyncpg" for v in variants.VARIANTS.values() if not v.threads)


def test_select() -> None:
    assert drivers.select(["raw", "depends"], None, named=True) == (
        [("raw", "asyncpg"), ("depends", "asyncpg")], [],
    )  # fmt: skip
    pairs, notes = drivers.select(["raw", "depends"], ["psycopg"], named=False)
    assert pairs == [("depends", "psycopg")] and len(notes) == 1 and "raw" in notes[0]
    with pytest.raises(drivers.DriverError, match="--driver psycopg: variant raw"):
        drivers.select(["raw", "depends"], ["psycopg"], named=True)
    pairs, _ = drivers.select(["raw", "depends"], ["asyncpg", "psycopg"], named=True)
    assert pairs == [("raw", "asyncpg"), ("depends", "asyncpg"), ("depends", "psycopg")]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--driver", "psycopg", "--variants", "raw,depends"],
        ["run", "--driver", "mysql"],
        ["verify", "raw", "--driver", "psycopg"],
        ["pitfalls", "--driver", "psycopg", "--variants", "raw"],
        ["cost", "--driver", "psycopg", "--variants", "fastapi_sqla"],
    ],
)
def test_driver_errors_are_one_line_exit_2(argv: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    extra = ["--out", str(out)] if argv[0] != "verify" else []
    result = subprocess.run([*CLI, *argv, *extra], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "driver" in lines[0], lines
    assert "mysql" in lines[0] or argv[argv.index("--driver") + 1] in lines[0]
    if "mysql" not in argv:
        assert ("raw" if "raw" in " ".join(argv) else "fastapi_sqla") in lines[0]
    assert not out.exists()


def test_psycopg_engine_prepares_on_first_use(db: DatabaseUrl) -> None:
    settings = Settings(url=db, driver="psycopg", app_name="sessionbench-driver-test")

    async def check() -> tuple[str, int | None, str]:
        engine = create_async_engine(settings.engine_url, connect_args=settings.connect_args)
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                name = await conn.scalar(text("select current_setting('application_name')"))
                return type(driver).__module__, driver.prepare_threshold, name
        finally:
            await engine.dispose()

    module, threshold, name = asyncio.run(check())
    assert module.startswith("psycopg") and threshold == 0
    assert name == "sessionbench-driver-test"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_on_both_drivers_records_the_evidence(tmp_path: Path, db: DatabaseUrl) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", "--no-co", "--driver", "asyncpg,psycopg", "--variants", "depends",
         "--scenarios", "read", "--users", "4", "--trials", "1", "--duration", "1",
         "--warmup", "0.5", "--pool-size", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=110,
        env={**os.environ, "DATABASE_URL": db.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["settings"]["drivers"] == ["asyncpg", "psycopg"]
    assert set(doc["settings"]["driver_settings"]) == {"asyncpg", "psycopg"}
    assert doc["variants"]["depends+psycopg"]["driver"] == "psycopg"
    cells = {c["variant"]: c for c in doc["cells"]}
    assert set(cells) == {"depends+asyncpg", "depends+psycopg"}
    for driver in DRIVERS:
        cell = cells[f"depends+{driver}"]
        # a busy shared machine may invalidate a cell (core saturation), never the driver
        assert cell["status"] in ("ok", "invalid"), cell["reasons"]
        assert not [r for r in cell["reasons"] if r.startswith("driver")], cell["reasons"]
        assert cell["driver"] == driver and cell["requests"] > 0
        assert cell["drivers_loaded"] == [driver], cell["driver_connections"]
    assert any(c.startswith("psycopg.") for c in cells["depends+psycopg"]["driver_connections"])
    written = {p.name for p in build(out)}
    assert "axis-driver.png" in written
    report = (out / "report.md").read_text()  # each series on its driver, proven by its cells
    for driver in DRIVERS:
        assert f"{driver}: depends+{driver} (1 of 1 confirmed by the connections" in report


def test_series_names_carry_the_driver_only_when_it_varies() -> None:
    from bench.load.runner import RunConfig

    base = {"mode": "quick", "variants": ["raw", "depends"], "scenarios": ["read"],
            "users": [8], "trials": 1, "duration": 1.0, "warmup": 0.5, "pool_sizes": [10],
            "max_overflow": 0, "out": Path("/tmp/x")}  # fmt: skip
    plain = RunConfig(**base).series()
    assert [(s.name, s.driver) for s in plain] == [("raw", "asyncpg"), ("depends", "asyncpg")]
    both = RunConfig(**base, drivers=["asyncpg", "psycopg"])
    assert [(s.name, s.driver) for s in both.series()] == [
        ("raw+asyncpg", "asyncpg"), ("depends+asyncpg", "asyncpg"),
        ("depends+psycopg", "psycopg"),
    ]  # fmt: skip
    assert both.cell_count == 3
    assert set(both.settings()["driver_settings"]) == {"asyncpg", "psycopg"}
