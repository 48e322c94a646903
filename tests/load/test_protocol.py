"""The runner ↔ recorder protocol (bench/load/protocol.py): what the runner sets is what the
recorder reads, the files are read only once whole, and no other module spells the names."""

from __future__ import annotations

from pathlib import Path

from bench.load import protocol
from tests.source import spelled

BENCH = Path(__file__).resolve().parents[2] / "bench"
NAMES = {
    value
    for name, value in vars(protocol).items()
    if name.endswith(("_ENV", "_FILE")) and isinstance(value, str)
}


def test_a_solo_cell_s_settings_reach_the_recorder(tmp_path: Path) -> None:
    env = protocol.environ(tmp_path, warmup=1.5, duration=2.0, follow=0.5, seed_rows=500)
    assert protocol.WINDOW_AT_ENV not in env and protocol.WINDOWS_ENV not in env
    assert protocol.Settings.read(env) == protocol.Settings(
        out=str(tmp_path), warmup=1.5, duration=2.0, follow=0.5, seed_rows=500
    )


def test_a_co_scheduled_window_reaches_the_recorder_to_the_microsecond(tmp_path: Path) -> None:
    at = 1_764_650_000.123456
    env = protocol.environ(tmp_path, duration=12.0, window_at=at, windows=6, seed_rows=10_000)
    assert protocol.WARMUP_ENV not in env and protocol.FOLLOW_ENV not in env
    read = protocol.Settings.read(env)
    assert read.window_at == at and read.windows == 6 and read.duration == 12.0
    assert read.warmup == 0.0 and read.follow == 0.0  # unset: the recorder's defaults


def test_unset_settings_are_the_recorder_s_defaults() -> None:
    read = protocol.Settings.read({protocol.WINDOW_AT_ENV: "", protocol.WINDOWS_ENV: "0"})
    assert read == protocol.Settings(windows=1)  # an empty instant is none; at least 1 window
    assert read.out is None and read.result_timeout == 15.0 and read.seed_rows == 10_000
    assert protocol.Settings.read({protocol.RESULT_TIMEOUT_ENV: "3"}).result_timeout == 3.0


def test_a_file_is_read_only_once_whole(tmp_path: Path) -> None:
    assert protocol.read(tmp_path, protocol.START_FILE) is None  # not written yet
    (tmp_path / protocol.START_FILE).write_text('{"window": [1.0, ')  # being written
    assert protocol.read(tmp_path, protocol.START_FILE) is None
    protocol.write(str(tmp_path), protocol.START_FILE, {"window": [1.0, 3.0]})
    assert protocol.read(tmp_path, protocol.START_FILE) == {"window": [1.0, 3.0]}


def test_no_other_module_spells_the_protocol_s_names() -> None:
    """Docstrings may name them; code must take them from bench.load.protocol."""
    assert spelled(NAMES, skip=BENCH / "load" / "protocol.py") == []
