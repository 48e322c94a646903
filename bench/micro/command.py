"""``sessionbench micro``: run the micro-benchmarks with timing on, JSON into a run folder.

The JSON is pytest-benchmark's own (``pytest-benchmark compare`` reads it), with micro's
status added under ``sessionbench`` (``MicroStatus``). It goes next to an existing
``run.json`` (``--out`` of a load run), which micro leaves alone, or into a new run folder
whose ``run.json`` (micro's own) carries the environment metadata.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common.console import console
from bench.common.lifecycle import exit_code
from bench.common.result_files import MicroStatus, ensure_writable, read_json
from bench.common.results import ROOT, RUN_FILE, Run, environment, write_atomically
from bench.common.run_folder import MICRO

MICRO_DIR = Path(__file__).resolve().parent
MICRO_FILE = MICRO.name


def run(args: argparse.Namespace) -> int:
    out: Path = args.out or ROOT / "results" / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-micro"
    ensure_writable(out)  # ResultFileError: one line, exit 2
    if (out / MICRO_FILE).exists():
        console.print(f"sessionbench: error: --out {out} already holds {MICRO_FILE}")
        return 2
    env = environment()
    own = (
        None
        if (out / RUN_FILE).exists()
        else Run.create(out, settings={"mode": "micro", "quick": args.quick}, env=env)
    )
    cmd = [
        sys.executable, "-m", "pytest", str(MICRO_DIR), "-p", "no:cacheprovider",
        "-o", "addopts=", "--rootdir", str(ROOT), "-q", "--benchmark-enable",
        f"--benchmark-json={out / MICRO_FILE}", "--benchmark-columns=median,iqr,stddev,rounds",
        "--benchmark-group-by=group", "--benchmark-sort=mean",
    ]  # fmt: skip
    if args.quick:
        cmd.append("--micro-quick")
    if args.select:
        cmd += ["-k", args.select]
    console.print(f"sessionbench micro{' --quick' if args.quick else ''} → {out}", highlight=False)
    started = time.monotonic()
    try:
        code = subprocess.run(cmd, cwd=ROOT, check=False).returncode
    except KeyboardInterrupt:
        code = 130
    wall = time.monotonic() - started
    ok = code == 0 and (out / MICRO_FILE).exists()
    status = MicroStatus(
        quick=args.quick,
        status="complete" if ok else ("incomplete" if code == 130 else "failed"),
        wall_seconds=round(wall, 1),
        # The load run in the same folder may come from another commit.
        git_commit=env["git_commit"],
        git_dirty=env["git_dirty"],
    )
    if (out / MICRO_FILE).exists():
        document = read_json(out / MICRO_FILE)
        write_atomically(out / MICRO_FILE, {**document, "sessionbench": status.model_dump()})
    if own is not None:
        own.finish(status.status)
    console.print(f"micro {status.status} in {wall:.0f} s: {out / MICRO_FILE}")
    return exit_code(status.status)
