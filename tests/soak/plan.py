"""What the soak runs, drawn from one seed: job sizes, how each job starts, faults and when.

Pure: ``plan_jobs(random.Random(seed), ...)`` gives the same jobs for the same seed, so a failing
soak is reproduced by running it again with ``SOAK_SEED`` set to the printed seed.

Each fault kind is planned ``per_kind`` times per mode and spread over the jobs (a job gets one
or two, never the same kind twice, and never a Realtime fault together with a trigger that
will not reach Trigger.dev, since such a job has no run to follow). Where a fault strikes:

* at trigger time: faults on the trigger request, aimed at the job's run by its table tag
  (the fake matches the tags a trigger asks for), so jobs can start concurrently;
* when the run starts: faults on the first ``cells`` stream reads of the job's run (also by
  tag), e.g. a cut inside the event after ``at`` of the cells;
* at start: the backend killed while the job is being dispatched;
* mid-job: once ``at`` (a fraction) of the job's cells are finished.

Jobs with a Realtime fault run at a third of the speed: a short job can otherwise end while a
backend restarted by another job's fault is still re-attaching, and the fault then strikes
nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

TRIGGER = "trigger"
LOCAL = "local"

FAULTS: dict[str, str] = {
    "feed_drop": "realtime run feed dropped mid-response",
    "stream_drop": "`cells` stream dropped mid-event",
    "handle_409": "409 shape handle rotation",
    "burst_429": "429 burst with x-ratelimit-reset",
    "server_5xx": "5xx answers",
    "slow_server": "slow server (held past the client's timeout)",
    "token_expiry": "public token expired mid-run",
    "trigger_unreachable": "Trigger.dev unreachable at trigger time",
    "enricher_timeout": "enricher timing out",
    "enricher_error": "enricher raising (HTTP 500)",
    "backend_kill": "backend SIGKILLed and restarted mid-job",
    "db_locked": "database locked (exclusive) for 1-2 s",
}
MODE_FAULTS: dict[str, tuple[str, ...]] = {
    TRIGGER: tuple(FAULTS),
    LOCAL: ("enricher_timeout", "enricher_error", "backend_kill", "db_locked"),
}
REALTIME = {"feed_drop", "stream_drop", "handle_409", "token_expiry"}
"""Faults that need the job to be followed on a Trigger.dev run."""

MIN_SIZE, MAX_SIZE = 20, 200


@dataclass
class Fault:
    kind: str
    variant: str = ""
    """Which request it hits or how (``trigger``, ``realtime_run``, ``refused-5``...)."""
    at: float = 0.0
    """Mid-job faults: strike once this fraction of the job's cells is finished."""
    times: int = 1
    status: int = 0
    seconds: float = 0.0
    rows: tuple[int, ...] = ()
    """Enricher faults: the rows (0-based) whose cells time out or fail."""
    fired: bool = False
    note: str = ""

    @property
    def when(self) -> str:
        if self.kind in ("enricher_timeout", "enricher_error"):
            return "cells"
        if self.kind == "trigger_unreachable" or self.variant == "trigger":
            return "trigger"
        if self.kind == "backend_kill" and self.variant != "mid-job":
            return "start"
        if self.kind == "stream_drop" or (
            self.kind == "server_5xx" and self.variant == "stream_read"
        ):
            return "run-start"
        return "mid-job"

    def label(self) -> str:
        parts = [self.kind]
        if self.variant:
            parts.append(self.variant)
        if self.when == "mid-job":
            parts.append(f"@{self.at:.0%}")
        return ":".join(parts)


@dataclass
class JobPlan:
    index: int
    mode: str
    size: int
    via: str
    """``page`` (the page's Run event) or ``api`` (POST /api/tables/{id}/enrich)."""
    delay_ms: int
    """How long the oracle takes per cell."""
    faults: list[Fault] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows of the job's table: column A runs on every row, column B on the first rows."""
        return (self.size + 1) // 2

    @property
    def b_rows(self) -> int:
        return self.size - self.rows

    def row_mode(self, row: int) -> str | None:
        for fault in self.faults:
            if row in fault.rows:
                return "slow" if fault.kind == "enricher_timeout" else "fail"
        return None


def _spread(
    rng: random.Random, kinds: tuple[str, ...], per_kind: int, jobs: int
) -> list[list[str]]:
    slots = [k for k in kinds for _ in range(per_kind)]
    rng.shuffle(slots)
    by_job: list[list[str]] = [[] for _ in range(jobs)]
    for i, kind in enumerate(slots):
        j = i % jobs
        for _ in range(jobs):
            clash = kind in by_job[j] or (
                (kind in REALTIME and "trigger_unreachable" in by_job[j])
                or (kind == "trigger_unreachable" and REALTIME & set(by_job[j]))
            )
            if not clash and len(by_job[j]) < 2:
                break
            j = (j + 1) % jobs
        by_job[j].append(kind)
    return by_job


def _fault(rng: random.Random, kind: str, mode: str, plan_rows: int) -> Fault:
    at = round(rng.uniform(0.05, 0.6), 2)
    if kind == "feed_drop":
        return Fault(kind, "realtime_run", at=at, times=rng.randint(1, 2))
    if kind == "stream_drop":
        return Fault(kind, "stream_read", at=at)
    if kind in ("handle_409", "token_expiry"):
        return Fault(kind, at=at)
    if kind == "burst_429":
        variant = rng.choice(["trigger", "realtime_run"])
        times = rng.randint(1, 3) if variant == "trigger" else rng.randint(2, 4)
        return Fault(kind, variant, at=at, times=times, seconds=round(rng.uniform(0.3, 1.0), 2))
    if kind == "server_5xx":
        variant = rng.choice(["trigger", "realtime_run", "stream_read"])
        return Fault(
            kind, variant, at=at, times=rng.randint(1, 3), status=rng.choice([500, 502, 503])
        )
    if kind == "slow_server":
        return Fault(kind, rng.choice(["trigger", "realtime_run"]), at=at)
    if kind == "trigger_unreachable":
        variant = rng.choice(["refused-5", "refused-5", "refused-2", "lost-5"])
        return Fault(kind, variant, times=int(variant[-1]))
    if kind in ("enricher_timeout", "enricher_error"):
        count = rng.randint(1, 3) if kind == "enricher_timeout" else rng.randint(1, 5)
        return Fault(kind, rows=tuple(sorted(rng.sample(range(plan_rows), count))))
    if kind == "backend_kill":
        variants = (
            ["mid-job", "mid-job", "dispatch-held", "dispatch-refused"]
            if mode == TRIGGER
            else ["mid-job", "mid-job", "at-start"]
        )
        return Fault(kind, rng.choice(variants), at=at)
    if kind == "db_locked":
        return Fault(kind, at=at, seconds=round(rng.uniform(1.0, 2.0), 1))
    raise ValueError(kind)


def plan_jobs(
    rng: random.Random,
    mode: str,
    *,
    jobs: int,
    per_kind: int,
    first_index: int,
    seconds_per_job: float,
) -> list[JobPlan]:
    """``jobs`` jobs of ``mode``; the oracle's delay makes each take about ``seconds_per_job``."""
    if jobs <= 0:
        return []
    kinds = MODE_FAULTS[mode]
    per_kind = min(per_kind, max(1, 2 * jobs // len(kinds)))  # at most two faults a job
    spread = _spread(rng, kinds, per_kind, jobs)
    plans = []
    for i in range(jobs):
        # log-uniform over 20-200: as many small jobs as big ones, and a third less work
        size = min(MAX_SIZE, int(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** rng.random()))
        plan = JobPlan(
            index=first_index + i,
            mode=mode,
            size=size,
            via=rng.choice(["page", "api"]),
            delay_ms=max(5, min(500, int(seconds_per_job * 4 * 1000 / size))),
        )
        taken: set[int] = set()
        for kind in spread[i]:
            fault = _fault(rng, kind, mode, plan.rows)
            if fault.rows:  # one enricher fault per row
                fault.rows = tuple(r for r in fault.rows if r not in taken) or fault.rows[:0]
                taken.update(fault.rows)
            plan.faults.append(fault)
        if REALTIME & set(spread[i]):  # time for a restarted backend to follow the run again
            plan.delay_ms = min(500, plan.delay_ms * 3)
        plans.append(plan)
    return plans
