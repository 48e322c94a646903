"""run.json's ``coscheduled`` record: the models the co-scheduled pass writes and its readers read.

Written by bench/load/coschedule.py (``CoGroup`` per group loaded, ``CoWindow`` per window,
``CoMember`` per member in a window, ``CoSide`` per member's whole run) and the load runner
(``CoRecord``: settings, series started, groups in run order); read by bench/common/pairs.py
(the verdicts), the load report, the cost report's cross-check and the findings. The models
live here, not beside their writer, because ``RunFile`` and ``pairs`` (bench/common) read them
and bench/common imports no command.

The JSON shape is the one the pass wrote before it had models (``sessionbench.run/2``): a
record is dumped with :meth:`CoRecord.document`, which leaves out the fields its writer did not
set (a failed side has only its status and reasons), so a file read and written again is the
same file. Fields that older passes did not record, or that hand-made records in the tests
leave out, default to what the readers assumed before (``look`` 1, no windows, None).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Number = int | float  # as bench.common.result_files.Number: an int stays an int


class Lenient(BaseModel):
    """As bench.common.result_files.Lenient (which imports this module): checks its fields and
    keeps every other one."""

    model_config = ConfigDict(extra="allow")


class CoSettingsRecord(Lenient):
    """How the pass ran (bench.load.coschedule.CoSettings, as recorded)."""

    anchors: list[str]
    windows: int
    window_s: Number
    warmup_s: Number
    rounds: int
    group: str
    start_margin_s: Number
    steal_limit_percent: Number
    saturated_percent: Number = 85  # absent before the saturation guard: its first value
    kinds: list[str] = []
    cells: list[str] = []
    budget_s: Number = 0  # absent before looks: the planned groups only


class IntegrityCheck(Lenient):
    """One integrity check of a member's whole run (bench.common.integrity.Check)."""

    name: str
    ok: bool
    detail: str


class CoSide(Lenient):
    """One member's whole run in a group: its status, counts and integrity checks (a side
    whose locust wrote no results has only ``status`` and ``reasons``)."""

    status: str
    reasons: list[str] = []
    integrity: list[IntegrityCheck] = []
    late_s: Number = 0.0
    failures_by_phase: dict[str, int] = {}
    requests_all_phases: int | None = None


class CoMember(Lenient):
    """One member in one window: requests and server CPU (its own tally, else locust's count
    and the process's CPU), errors and latency histogram (its locust); None: not recorded."""

    requests: int
    requests_source: str | None = None
    requests_recorded: int | None = None
    calibration_cpu_s: Number | None = None
    server_user_s: Number | None = None
    server_system_s: Number | None = None
    context_switches: int | None = None
    gc_cpu_s: Number | None = None
    full_gc_cpu_s: Number | None = None
    errors: int | None = None
    server_cpu_s: Number
    locust_cpu_s: Number | None = None
    rps: Number | None = None
    share: Number | None = None
    histogram: str | None = None

    @property
    def capacity(self) -> float | None:
        """Requests per second of its own server CPU (None: no request or no CPU measured)."""
        cpu = self.server_cpu_s or 0.0
        return self.requests / cpu if cpu > 0 and self.requests else None


class CoWindow(Lenient):
    """One window of a group: the machine's steal and busy cores, every member's figures, and
    why the window was dropped (None: kept)."""

    start: Number | None = None
    elapsed_s: Number | None = None
    steal_percent: list[Number] = []
    busy_percent: list[Number] = []
    members: dict[str, CoMember]
    dropped: str | None
    servers_busy_percent: Number | None = None

    @property
    def reason(self) -> str | None:
        """The dropped window's reason as one word (``steal``, ``unsaturated``, …)."""
        return self.dropped.split(" ", 1)[0] if self.dropped else None


class CoGroup(Lenient):
    """One group loaded together: when, who, its status, each member's side, its windows;
    ``look``: 1 for the planned pass, k for its k-th follow-up."""

    round: int = 1
    scenario: str
    users: int
    members: list[str]
    order: int = 0
    window_s: Number | None = None
    status: str
    reasons: list[str] = []
    sides: dict[str, CoSide] = {}
    windows: list[CoWindow] = []
    look: int = 1

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def holds(self, *names: str) -> bool:
        """Whether every one of *names* was a member."""
        return all(n in self.members for n in names)


class CoRecord(Lenient):
    """The co-scheduled pass of a run: its settings, the series that started, its groups."""

    settings: CoSettingsRecord
    groups: list[CoGroup] = []
    series: list[str] = []

    def document(self) -> dict[str, Any]:
        """The record as run.json holds it (the fields its writer set, in the models' order)."""
        return self.model_dump(mode="json", exclude_unset=True)
