"""Fan-out: many tabs watching one Trigger.dev run, on one backend process.

The app runs as in ``bench/latency.py`` (prod build on one port, Trigger.dev mode, the fake in
this process). One job's run is active; ``CLIENTS`` socket clients then open the table page the
way the browser does: a websocket to ``/_event`` (Engine.IO 4 / Socket.IO 5, token in the
query) whose connect packet carries the ``hydrate_and_load`` event for ``/tables/1``, exactly
the frame the compiled frontend sends (minus the per-state hashes, so each client gets the full
state). ``TableState.load`` re-attaches each tab to the active job and starts its
``follow_run``; a client counts as attached once it has received the run's status.

Then the benchmark changes the run's ``progress`` metadata ``CHANGES`` times, ``GAP`` seconds
apart, and records when each client receives the delta carrying the new ``(n/N)``
(``time.time()`` on the raw websocket message, before any JSON parsing, against
``time.time()`` taken right before the fake's ``update_metadata``).

Measured: upstream subscriptions (the fake's ``/realtime/v1/runs/<id>`` requests at
``offset=-1``, i.e. new shape subscriptions, and its ``cells`` stream reads), delivery latency
p50/p95/max over every (client, change), and the backend process's RSS (psutil) before the
clients, once attached, and after the changes.

The clients are ``tests.support.reflex_socket.ReflexSocket`` (asyncio + wsproto, Reflex's protocol);
they answer pings and send nothing else (no grid viewport events).

    python -m bench.fanout [--clients 200] [--changes 30] [--gap 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

from bench.live_app import LiveApp, code_state, percentile
from tests.support.accounts import sign_in_over_http
from tests.support.machine import describe, figure, today
from tests.support.paths import RESULTS, ROOT
from tests.support.reflex_socket import EVENT_PREFIX, ReflexSocket

TOTAL = 1000
TARGET_DELIVERY_P95_MS = 250.0
PROGRESS = re.compile(r"\((\d+)/" + str(TOTAL) + r"\)")


def progress(done: int) -> list[dict[str, Any]]:
    value = {"done": done, "failed": 0, "total": TOTAL}
    return [{"type": "set", "key": "progress", "value": value}]


class SocketClient:
    """One tab that loaded /tables/1, recording when each ``(n/N)`` progress value arrived."""

    def __init__(self, host: str, port: int, cookie: str) -> None:
        self.received: dict[int, float] = {}
        """First arrival (epoch seconds) of each ``(n/N)`` progress value."""
        self.attached = asyncio.Event()
        self.socket = ReflexSocket(
            host, port, path="/tables/1", on_text=self._on_text, headers={"Cookie": cookie}
        )

    @property
    def messages(self) -> int:
        return self.socket.messages

    def _on_text(self, text: str, now: float) -> None:
        if text.startswith(EVENT_PREFIX):
            for match in PROGRESS.finditer(text):
                done = int(match.group(1))
                self.received.setdefault(done, now)
                self.attached.set()

    async def connect(self) -> None:
        await self.socket.connect()

    async def close(self) -> None:
        await self.socket.close()


async def attach_all(clients: list[SocketClient], concurrency: int, within: float) -> float:
    started = time.monotonic()
    limit = asyncio.Semaphore(concurrency)

    async def one(client: SocketClient) -> None:
        async with limit:
            await client.connect()
            await asyncio.wait_for(client.attached.wait(), within)

    await asyncio.gather(*(one(c) for c in clients))
    return time.monotonic() - started


async def drive(
    app: LiveApp, clients: int, changes: int, gap: float, profile: Path | None = None
) -> dict[str, Any]:
    fake = app.fake
    job = await asyncio.to_thread(app.start_job, app.enrichment_cells(5))
    run_id = job["runId"]
    fake.set_status(run_id, "EXECUTING")
    fake.update_metadata(run_id, progress(0))
    await asyncio.sleep(0.5)
    rss_idle = app.backend_rss_mib()
    host, port = "127.0.0.1", app.port
    owner = await sign_in_over_http(f"http://{host}:{port}", set_up=True)  # every tab signs in
    tabs = [SocketClient(host, port, owner.cookie) for _ in range(clients)]
    try:
        attach_seconds = await attach_all(tabs, concurrency=20, within=120)
        await asyncio.sleep(1.0)
        rss_attached = app.backend_rss_mib()
        spy = None
        if profile is not None:  # py-spy on the backend while the changes fan out
            spy = await asyncio.create_subprocess_exec(
                str(ROOT / ".venv" / "bin" / "py-spy"),
                "record",
                "--pid",
                str(app.backend_processes()[0].pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--duration",
                str(int(changes * gap) + 1),
                "--output",
                str(profile),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)
        backend = app.backend_processes()[0]
        # idle tabs cost something too (pings, each follow_run's 5 s tab check): measured apart
        cpu_idle_start = sum(backend.cpu_times()[:2])
        await asyncio.sleep(6.0)
        cpu_idle_per_s = (sum(backend.cpu_times()[:2]) - cpu_idle_start) / 6.0
        cpu_start = sum(backend.cpu_times()[:2])
        applied: list[tuple[int, float]] = []
        for i in range(1, changes + 1):
            t = time.time()
            fake.update_metadata(run_id, progress(i))
            applied.append((i, t))
            await asyncio.sleep(gap)
        cpu_changes = sum(backend.cpu_times()[:2]) - cpu_start
        await asyncio.sleep(2.0)
        rss_after = app.backend_rss_mib()
        if spy is not None:
            await asyncio.wait_for(spy.wait(), 60)
    finally:
        for tab in tabs:
            await tab.close()
    await asyncio.sleep(1.0)
    rss_closed = app.backend_rss_mib()

    # When each tab first showed change i *or a newer one*: the fake's long-poll and the hub
    # coalesce progress a slow reader has not taken yet, so under bursts a value can be skipped.
    shown: list[dict[int, float]] = []
    for tab in tabs:
        earliest: dict[int, float] = {}
        best = float("inf")
        for i, _t in reversed(applied):
            best = min(best, tab.received.get(i, float("inf")))
            if best != float("inf"):
                earliest[i] = best
        shown.append(earliest)
    exact = [(tab.received[i] - t) * 1000 for i, t in applied for tab in tabs if i in tab.received]
    latencies: list[float] = []
    per_change: list[dict[str, Any]] = []
    missing = 0
    for i, t in applied:
        arrivals = [s[i] - t for s in shown if i in s]
        missing += clients - len(arrivals)
        latencies.extend(a * 1000 for a in arrivals)
        if arrivals:
            per_change.append(
                {
                    "n": i,
                    "clients": len(arrivals),
                    "first_ms": round(min(arrivals) * 1000, 1),
                    "last_ms": round(max(arrivals) * 1000, 1),
                }
            )
    runs = [r for r in fake.requests_of("realtime_run") if r.run_id == run_id]
    initial = [r for r in runs if "offset=-1" in r.query]
    streams = [r for r in fake.requests_of("stream_read") if r.run_id == run_id]
    return {
        "run_id": run_id,
        "clients": clients,
        "changes": changes,
        "gap_s": gap,
        "attach_seconds": round(attach_seconds, 2),
        "upstream": {
            "subscriptions_opened_offset_minus_1": len(initial),
            "realtime_run_requests_total": len(runs),
            "cells_stream_reads": len(streams),
            "backend_processes": len(app.backend_processes()),
        },
        "delivery": {
            "samples": len(latencies),
            "missing": missing,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies, default=float("nan")),
            "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "first_client_p50_ms": percentile([c["first_ms"] for c in per_change], 50),
            "last_client_p50_ms": percentile([c["last_ms"] for c in per_change], 50),
            "per_change": per_change,
            "exact_values_delivered": len(exact),
            "exact_value_p95_ms": percentile(exact, 95),
        },
        "rss_mib": {
            "before_clients": round(rss_idle, 1),
            "clients_attached": round(rss_attached, 1),
            "after_changes": round(rss_after, 1),
            "after_clients_left": round(rss_closed, 1),
            "per_client_kib": round((rss_attached - rss_idle) * 1024 / clients, 1),
        },
        "client_messages_mean": statistics.fmean(t.messages for t in tabs),
        "backend_cpu": {
            # gross: while changes come every `gap` (< 5 s) no tab check fires
            "ms_per_change": round(cpu_changes / changes * 1000, 1),
            "us_per_client_update": round(cpu_changes / changes * 1e6 / clients, 1),
            "idle_percent_of_a_core": round(cpu_idle_per_s * 100, 1),
        },
    }


def run(
    clients: int,
    changes: int,
    gap: float,
    profile: Path | None = None,
    state_manager: str | None = None,
) -> dict[str, Any]:
    machine = describe()
    code = code_state()
    env = {"REFLEX_STATE_MANAGER_MODE": state_manager} if state_manager else {}
    with LiveApp(name="fanout", extra_env=env) as app:
        raw = asyncio.run(drive(app, clients, changes, gap, profile))
        startup = app.startup_seconds
    up = raw["upstream"]
    delivery = raw["delivery"]
    rss = raw["rss_mib"]
    rows = [
        figure(
            f"upstream subscriptions for 1 run, {clients} clients",
            up["subscriptions_opened_offset_minus_1"],
            f"per {up['backend_processes']} backend process(es)",
            target="1 per backend process",
            met=up["subscriptions_opened_offset_minus_1"] == up["backend_processes"],
        ),
        figure("delivery p50", round(delivery["p50_ms"], 1), "ms"),
        figure(
            "delivery p95",
            round(delivery["p95_ms"], 1),
            "ms",
            target=f"≤ {TARGET_DELIVERY_P95_MS:.0f} ms",
            met=delivery["p95_ms"] <= TARGET_DELIVERY_P95_MS and delivery["missing"] == 0,
        ),
        figure(
            f"backend CPU per change ({clients} clients)", raw["backend_cpu"]["ms_per_change"], "ms"
        ),
        figure("backend RSS before clients", rss["before_clients"], "MiB"),
        figure(f"backend RSS with {clients} clients", rss["clients_attached"], "MiB"),
        figure("backend RSS per client", rss["per_client_kib"], "KiB"),
    ]
    return {
        "name": "fanout",
        "date": today(),
        "machine": machine,
        "command": "bash bench/run.sh fanout  (python -m bench.fanout)",
        "rows": rows,
        "code": code,
        "setup": {
            "app": "reflex run --env prod (granian, one port, one worker), Trigger.dev mode",
            "app_startup_s": round(startup, 1),
            "clients": "asyncio + wsproto Socket.IO clients in the benchmark's process",
            "state_manager": state_manager or "default (rxconfig: disk)",
        },
        **raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between two changes")
    parser.add_argument("--out", type=Path, default=RESULTS / "fanout.json")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the backend during the changes (collapsed stacks)"
    )
    parser.add_argument(
        "--state-manager",
        choices=["disk", "memory"],
        help="override Reflex's state manager for an experiment (REFLEX_STATE_MANAGER_MODE)",
    )
    args = parser.parse_args()
    result = run(args.clients, args.changes, args.gap, args.profile, args.state_manager)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for row in result["rows"]:
        print(
            f"{row['metric']:<48} {row['value']} {row['unit']}  target {row['target']}  met {row['met']}"
        )
    print("upstream:", json.dumps(result["upstream"]))
    print("rss:", json.dumps(result["rss_mib"]))
    print("attach seconds:", result["attach_seconds"])
    print("backend cpu:", json.dumps(result["backend_cpu"]))
    print("load average at start:", result["machine"]["load_average_at_start"])


if __name__ == "__main__":
    main()
