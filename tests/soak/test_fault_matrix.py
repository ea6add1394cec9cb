"""The fault matrix (issue 6, section 1): jobs through the real app while faults strike.

Trigger.dev mode first: the app (``reflex run --env prod --backend-only``, a real process in its
own process group) against the fake Trigger.dev server, whose task runs the real worker, with
every fault of the issue: the realtime run feed dropped mid-response, the ``cells`` stream cut
mid-event, 409 handle rotation, 429 bursts, 5xx, a server slower than the client's timeouts,
the public token expiring mid-run, Trigger.dev unreachable at trigger time, an enricher timing
out or failing, the backend SIGKILLed and restarted mid-job, and the database locked. Then local
mode with the faults that apply to it. Every job's every cell is accounted for (see
``tests/soak/harness.py`` for the definitions) and the page must agree with the database.

The seed is printed and can be set with ``SOAK_SEED``; ``SOAK_TRIGGER_JOBS`` and
``SOAK_LOCAL_JOBS`` change how many jobs run. The matrix is printed at the end of the pytest
run and written to ``test-artifacts/fault_matrix.{json,md}`` (``bench/results/`` with
``SOAK_RESULTS_DIR=bench/results``, as ``bash bench/run.sh fault_matrix`` sets).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import string
import time
from pathlib import Path

from tests.soak import matrix, oracle
from tests.soak.conftest import REPORT
from tests.soak.harness import JobOutcome, Soak, fetch_oracle_log
from tests.soak.plan import LOCAL, MODE_FAULTS, TRIGGER, plan_jobs
from tests.support.machine import describe
from tests.support.secret_scan import assert_no_leaks

DEFAULT_SEED = 20261128
TRIGGER_JOBS = int(os.environ.get("SOAK_TRIGGER_JOBS", "50"))
LOCAL_JOBS = int(os.environ.get("SOAK_LOCAL_JOBS", "20"))
MIN_FIRED = 3
"""Every fault kind must strike at least this often, or the matrix proves nothing about it."""
BUDGET_SECONDS = {TRIGGER: 240.0, LOCAL: 120.0}
"""A stop for a hang, well above the usual 1.5-2.5 min and 0.8-1 min on 2 cores."""
CONCURRENCY = {TRIGGER: 6, LOCAL: 4}
"""Jobs in flight at once. Local jobs share one process's enricher slots (4 for http_json)."""


def _secret(prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(28))


def test_fault_matrix(tmp_path: Path) -> None:
    seed = int(os.environ.get("SOAK_SEED", DEFAULT_SEED))
    print(f"fault matrix seed: {seed} (SOAK_SEED={seed} to reproduce)")
    REPORT.append(f"seed {seed} (reproduce with SOAK_SEED={seed} pytest tests/soak)")
    plans = {  # one generator per mode: the jobs of one mode do not depend on the other's count
        TRIGGER: plan_jobs(
            random.Random(f"{seed}:{TRIGGER}"),
            TRIGGER,
            jobs=TRIGGER_JOBS,
            per_kind=6,
            first_index=1,
            seconds_per_job=1.0,
        ),
        LOCAL: plan_jobs(
            random.Random(f"{seed}:{LOCAL}"),
            LOCAL,
            jobs=LOCAL_JOBS,
            per_kind=5,
            first_index=501,
            seconds_per_job=0.6,
        ),
    }
    keys = {
        "TRIGGER_SECRET_KEY": _secret("tr_dev_"),
        "ENRICHMENT_API_KEY": _secret(),
        "LLM_API_KEY": _secret("sk-"),
    }
    outcomes: list[JobOutcome] = []
    walls: dict[str, float] = {}
    backends: dict[str, dict[str, object]] = {}
    unplanned: list[str] = []
    sources: dict[str, str] = {}
    leaks: list[str] = []
    frames = 0
    machine = describe()
    started = time.monotonic()
    with oracle.serve(tmp_path / "oracle.log") as oracle_url:
        for mode in (TRIGGER, LOCAL):
            if not plans[mode]:
                continue
            soak = Soak(
                mode=mode,
                plans=plans[mode],
                work=tmp_path / mode,
                oracle_url=oracle_url,
                secrets=keys,
                seed=seed,
                concurrency=CONCURRENCY[mode],
            )
            soak.prepare()
            asyncio.run(soak.run(BUDGET_SECONDS[mode]))
            outcomes += soak.verify(asyncio.run(fetch_oracle_log(oracle_url)))
            walls[mode] = soak.wall_seconds
            assert soak.backend is not None
            backends[mode] = {
                "starts": soak.backend.starts,
                "kills": soak.backend.kills,
                "start_seconds": [round(s, 2) for s in soak.backend.start_seconds],
            }
            unplanned += soak.unplanned_jobs()
            sources.update(soak.scan_sources())
            leaks += soak.leaks
            frames += soak.scanned_frames
    walls["total"] = time.monotonic() - started

    rows = matrix.build_rows(outcomes)
    extra = {"backend": backends, "unplanned_jobs": unplanned, "page_frames_scanned": frames}
    json_path, _ = matrix.write(
        rows, outcomes, seed=seed, wall_seconds=walls, extra=extra, machine=machine
    )
    REPORT.extend(matrix.render(rows).splitlines())
    shown = ", ".join(f"{k} {v:.0f} s" for k, v in walls.items())
    REPORT.append(f"wall time: {shown}; written to {json_path}")
    failing = [
        o for o in outcomes if o.lost or o.duplicated or o.older or o.stuck or o.page_mismatch
    ]
    for o in failing[:15]:
        REPORT.append(f"job {o.mode} #{o.index} ({o.size} cells, via {o.via}, {o.faults}):")
        REPORT.extend(f"    {d}" for d in o.details[:8])
    for o in outcomes:
        for kind, why in o.unfired.items():
            REPORT.append(f"did not strike: {o.mode} #{o.index} {kind}: {why}")

    totals = [r for r in rows if r["fault"] == "all"]
    assert len([o for o in outcomes if o.mode == TRIGGER]) >= min(50, TRIGGER_JOBS)
    assert not failing, f"{len(failing)} job(s) lost, duplicated or stuck results: {totals}"
    assert not unplanned, unplanned
    for mode, kinds in MODE_FAULTS.items():
        fired = {r["fault"]: r["runs"] for r in rows if r["mode"] == mode}
        rare = {k: fired.get(k, 0) for k in kinds if fired.get(k, 0) < MIN_FIRED}
        assert not rare, f"{mode}: fault kinds that struck fewer than {MIN_FIRED} times: {rare}"
    assert frames > 0
    assert not leaks, f"secrets leaked to the page: {leaks}"
    assert_no_leaks(keys, sources)
