"""The fault matrix: fault × runs × lost × duplicated × stuck, from the jobs' outcomes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.soak.harness import JobOutcome
from tests.soak.plan import FAULTS, MODE_FAULTS
from tests.support.machine import describe, today
from tests.support.paths import ARTIFACTS, RESULTS

COLUMNS = ("lost", "duplicated", "older", "stuck", "page_mismatch", "retries")
HEADER = "| mode | fault | runs | lost | duplicated | older | stuck | page≠db | retries |"


def results_dir() -> Path:
    """Where the matrix goes: test-artifacts/ in the test command, so a test run never edits
    tracked files; bench/results/ (the committed figures) with ``SOAK_RESULTS_DIR`` set, as
    ``bash bench/run.sh fault_matrix`` does."""
    chosen = os.environ.get("SOAK_RESULTS_DIR")
    return Path(chosen).resolve() if chosen else ARTIFACTS


def _sum(outcomes: Iterable[JobOutcome], mode: str, fault: str, label: str) -> dict[str, Any]:
    chosen = list(outcomes)
    return {
        "mode": mode,
        "fault": fault,
        "label": label,
        "runs": len(chosen),
        **{c: sum(getattr(o, c) for o in chosen) for c in COLUMNS},
    }


def build_rows(outcomes: Sequence[JobOutcome]) -> list[dict[str, Any]]:
    """One row per fault kind a mode exercises (jobs where it fired), then each mode's total."""
    rows = []
    for mode, kinds in MODE_FAULTS.items():
        of_mode = [o for o in outcomes if o.mode == mode]
        if not of_mode:
            continue
        for kind in kinds:
            row = _sum((o for o in of_mode if kind in o.fired), mode, kind, FAULTS[kind])
            row["planned"] = sum(1 for o in of_mode for f in o.faults if f.split(":")[0] == kind)
            rows.append(row)
        quiet = [o for o in of_mode if not o.fired]
        rows.append(_sum(quiet, mode, "none", "no fault fired (control)"))
        rows.append(_sum(of_mode, mode, "all", "all jobs"))
    return rows


def render(rows: Sequence[dict[str, Any]]) -> str:
    lines = [HEADER, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"**{r['label']}**" if r["fault"] == "all" else r["label"]
        lines.append(
            f"| {r['mode']} | {name} | {r['runs']} | {r['lost']} | {r['duplicated']} |"
            f" {r['older']} | {r['stuck']} | {r['page_mismatch']} | {r['retries']} |"
        )
    return "\n".join(lines)


def write(
    rows: Sequence[dict[str, Any]],
    outcomes: Sequence[JobOutcome],
    *,
    seed: int,
    wall_seconds: dict[str, float],
    extra: dict[str, Any],
    machine: dict[str, object] | None = None,
) -> tuple[Path, Path]:
    """fault_matrix.json (bench/report.py's format) and fault_matrix.md, in ``results_dir()``."""
    machine = machine or describe()
    command = f"SOAK_SEED={seed} pytest tests/soak  # a step of scripts/test.sh"
    if results_dir() == RESULTS:
        command = f"bash bench/run.sh fault_matrix  # SOAK_SEED={seed}"
    result = {
        "name": "fault_matrix",
        "date": today(),
        "machine": machine,
        "command": command,
        "seed": seed,
        "wall_seconds": wall_seconds,
        "rows": [
            {
                "metric": f"{r['mode']}: {r['label']}",
                "value": r["lost"] + r["duplicated"] + r["older"] + r["stuck"],
                "unit": f"lost+duplicated+older+stuck over {r['runs']} runs",
                "target": "0",
                "met": r["lost"] + r["duplicated"] + r["older"] + r["stuck"] + r["page_mismatch"]
                == 0,
                **r,
            }
            for r in rows
        ],
        "raw": {"jobs": [asdict(o) for o in outcomes], **extra},
        "load_average_at_end": os.getloadavg(),
    }
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "fault_matrix.json"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    md_path = out / "fault_matrix.md"
    walls = ", ".join(f"{k} {v:.0f} s" for k, v in wall_seconds.items())
    averages = machine.get("load_average_at_start")
    load = ", ".join(f"{x:.1f}" for x in averages) if isinstance(averages, tuple | list) else "?"
    jobs = {mode: [o for o in outcomes if o.mode == mode] for mode in MODE_FAULTS}
    volume = "; ".join(
        f"{mode}: {len(of)} jobs, {sum(o.size for o in of):,} cells"
        for mode, of in jobs.items()
        if of
    )
    md_path.write_text(
        "# Fault matrix\n\n"
        f"Measured on {today()} with `{command}`: seed {seed}, wall time {walls}.\n"
        f"Machine: {machine.get('cpus')} cores ({machine.get('cpu_model')}),"
        f" {machine.get('memory_gib')} GiB, Python {machine.get('python')},"
        f" load average at start {load}.\n{volume}.\n\n"
        "`runs` counts the jobs in which the fault actually struck (a fault aimed at a point"
        " the job never reached is not counted). Definitions in tests/soak/harness.py.\n\n"
        + render(rows)
        + "\n"
    )
    return json_path, md_path
