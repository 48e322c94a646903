"""A server's own tally (bench/common/tally.py): dumps on SIGUSR1, read back as rows."""

import os
import signal
import time
from pathlib import Path

from bench.common import tally


def test_a_dump_holds_requests_cpu_and_its_kernel_split_and_old_lines_still_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tally.txt"

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    counter = tally.Tally(app, path)  # type: ignore[arg-type]
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 1
        while sum(i * i for i in range(200_000)) and time.monotonic() < deadline:
            pass  # spend CPU between the dumps
        counter.completed = 7
        os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    first, second = tally.read(path)
    assert second.requests - first.requests == 7
    assert second.cpu_ns > first.cpu_ns and second.user_ns >= first.user_ns
    assert second.user_ns + second.system_ns > 0 and second.switches >= first.switches
    path.write_text("1.0 5 100 0\n")  # the older four-field format
    assert tally.read(path) == [tally.Row(1.0, 5, 100, 0)]
