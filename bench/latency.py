"""Status latency: from the fake Trigger.dev server applying a change to the page's DOM showing it.

Two pages in one Chromium, measured in the same run, each following its own run on the same
fake server (started in this process):

* ours: the real app, a production build on one port (``reflex run --env prod``) in Trigger.dev
  mode, its table page re-attached to a job whose run the benchmark drives: fake → the backend's
  one Realtime subscription (``RunHub``) → ``TableState.follow_run`` → Reflex websocket → DOM;
* baseline: ``bench/baseline/`` (vite bundle of the official ``@trigger.dev/react-hooks``
  ``useRealtimeRun`` with a public access token), subscribing from the browser to the fake.

The benchmark changes the runs' ``progress`` metadata (``Enriching… (n/N)``), alternating
between the two runs, ``GAP`` seconds apart. The instant is ``time.time()`` taken right before
the fake's ``update_metadata`` hook (which applies the change and wakes the held long-polls).
A MutationObserver in each page records ``performance.timeOrigin + performance.now()`` when the
status text changes. Same machine, same wall clock; the offset between the page's clock and
Python's is measured at the start and at the end and recorded (``clock_check``).

    python -m bench.latency [--changes 200] [--gap 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from bench.live_app import LiveApp, code_state, percentile
from tests.support.accounts import browser_cookie, sign_in_over_http
from tests.support.live_server import serve_in_thread
from tests.support.machine import describe, figure, today
from tests.support.paths import CHROMIUM, CHROMIUM_ARGS, RESULTS, ROOT

BASELINE_DIST = ROOT / "bench" / "baseline" / "dist"
TOTAL = 1000
WARMUP = 5
TARGET_RATIO = 1.5
TARGET_P95_MS = 150.0

OBSERVER = """() => {
  window.__seen = [];
  let last = null;
  const record = () => {
    const el = document.querySelector('SELECTOR');
    const text = el ? el.textContent : null;
    if (text !== last) {
      last = text;
      window.__seen.push([text, performance.timeOrigin + performance.now()]);
    }
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, characterData: true});
  record();
}"""


def observer(selector: str) -> str:
    """A page script recording, in ``window.__seen``, each new text of the element (with when
    the DOM changed: ``performance.timeOrigin + performance.now()``)."""
    return OBSERVER.replace("SELECTOR", selector)


OBSERVE = observer("#job-status")

CLOCK = "() => performance.timeOrigin + performance.now()"

WS_ARRIVALS = r"""(() => {
  // Diagnostic for our page: when each websocket message carrying "(n/TOTAL)" arrives, before
  // socket.io and React handle it (this listener is registered before socket.io's onmessage).
  window.__ws = [];
  const Original = window.WebSocket;
  function Recording(...args) {
    const ws = new Original(...args);
    ws.addEventListener('message', (event) => {
      const t = performance.timeOrigin + performance.now();
      const m = typeof event.data === 'string' && event.data.match(/\((\d+)\/TOTAL\)/);
      if (m) window.__ws.push([Number(m[1]), t]);
    });
    return ws;
  }
  Recording.prototype = Original.prototype;
  Object.assign(Recording, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Recording;
})();"""


def label(done: int) -> str:
    return f"Enriching… ({done}/{TOTAL})"


def progress(done: int) -> list[dict[str, Any]]:
    value = {"done": done, "failed": 0, "total": TOTAL}
    return [{"type": "set", "key": "progress", "value": value}]


def clock_offset_ms(page: Page) -> dict[str, float]:
    """The page's clock minus Python's, in ms, with the round trip that bounds its error."""
    before = time.time()
    page_ms = float(page.evaluate(CLOCK))
    after = time.time()
    return {
        "offset_ms": page_ms - (before + after) / 2 * 1000,
        "round_trip_ms": (after - before) * 1000,
    }


def build_baseline() -> None:
    import subprocess

    subprocess.run(
        ["npx", "--no-install", "vite", "build"],
        cwd=ROOT / "bench" / "baseline",
        check=True,
        capture_output=True,
        timeout=180,
    )


def wait_text(page: Page, text: str, timeout_ms: float = 30_000) -> None:
    page.locator("#job-status").filter(has_text=text).wait_for(timeout=timeout_ms)


def run(changes: int, gap: float) -> dict[str, Any]:
    machine = describe()
    code = code_state()
    build_baseline()
    with ExitStack() as stack:
        app = stack.enter_context(LiveApp(name="latency"))
        fake = app.fake
        static = Starlette()
        static.mount("/", StaticFiles(directory=BASELINE_DIST, html=True))
        baseline_url = stack.enter_context(serve_in_thread(static))

        # ours: a job started through the app's REST API; the app triggers its run on the fake
        job = app.start_job(app.enrichment_cells(5))
        ours_run = job["runId"]
        fake.set_status(ours_run, "EXECUTING")
        fake.update_metadata(ours_run, progress(0))
        # baseline: a run of its own on the same fake, read with a public access token
        base_run = fake.create_run("process-enrichment-job", status="EXECUTING")
        fake.update_metadata(base_run, progress(0))
        token = fake.mint_token([f"read:runs:{base_run}"], expires_in=3600)

        # Before Playwright's sync API, which runs an event loop of its own in this thread.
        owner = asyncio.run(sign_in_over_http(app.url, set_up=True))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        pages: dict[str, Page] = {}
        for name in ("ours", "baseline"):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            if name == "ours":
                context.add_cookies([browser_cookie(owner, app.url)])  # type: ignore[list-item]
            pages[name] = context.new_page()
        pages["ours"].add_init_script(WS_ARRIVALS.replace("TOTAL", str(TOTAL)))
        pages["ours"].goto(app.url + "/tables/1")
        pages["baseline"].goto(f"{baseline_url}/?run={base_run}&token={token}&api={fake.url}")
        for page in pages.values():
            wait_text(page, label(0))
            page.evaluate(OBSERVE)
        runs = {"ours": ours_run, "baseline": base_run}
        clock_start = {name: clock_offset_ms(page) for name, page in pages.items()}

        applied: dict[str, list[tuple[int, float]]] = {"ours": [], "baseline": []}
        for i in range(1, changes + WARMUP + 1):
            for name in ("ours", "baseline") if i % 2 else ("baseline", "ours"):
                t = time.time()
                fake.update_metadata(runs[name], progress(i))
                applied[name].append((i, t * 1000))
                time.sleep(gap)
        last = changes + WARMUP
        for page in pages.values():
            wait_text(page, label(last), timeout_ms=10_000)
        clock_end = {name: clock_offset_ms(page) for name, page in pages.items()}
        seen = {name: page.evaluate("window.__seen") for name, page in pages.items()}
        ws_arrivals = pages["ours"].evaluate("window.__ws")
        upstream = [r.query for r in fake.requests_of("realtime_run") if r.run_id == ours_run]

    per_page: dict[str, dict[str, Any]] = {}
    for name in ("ours", "baseline"):
        first_seen: dict[str, float] = {}
        for text, t in seen[name]:
            first_seen.setdefault(text, t)
        latencies, missed = [], []
        for i, t_applied in applied[name]:
            if i <= WARMUP:
                continue
            t_dom = first_seen.get(label(i))
            if t_dom is None:
                missed.append(i)
            else:
                latencies.append(t_dom - t_applied)
        per_page[name] = {
            "n": len(latencies),
            "missed": missed,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "min_ms": min(latencies, default=float("nan")),
            "max_ms": max(latencies, default=float("nan")),
            "latencies_ms": [round(v, 2) for v in latencies],
        }
    # ours, split: fake -> websocket message in the page (backend + network), then -> DOM
    ws_first: dict[int, float] = {}
    for n, t in ws_arrivals:
        ws_first.setdefault(int(n), t)
    dom_first = dict(reversed(seen["ours"]))  # the first time each text was seen
    to_ws, to_dom = [], []
    for i, t_applied in applied["ours"]:
        if i > WARMUP and i in ws_first and label(i) in dom_first:
            to_ws.append(ws_first[i] - t_applied)
            to_dom.append(dom_first[label(i)] - ws_first[i])
    per_page["ours"]["breakdown"] = {
        "change_to_websocket_message_p50_ms": percentile(to_ws, 50),
        "change_to_websocket_message_p95_ms": percentile(to_ws, 95),
        "websocket_message_to_dom_p50_ms": percentile(to_dom, 50),
        "websocket_message_to_dom_p95_ms": percentile(to_dom, 95),
        "n": len(to_ws),
    }
    ours, base = per_page["ours"], per_page["baseline"]
    ratio = ours["p95_ms"] / base["p95_ms"]
    rows = [
        figure("ours p50", round(ours["p50_ms"], 1), "ms"),
        figure(
            "ours p95",
            round(ours["p95_ms"], 1),
            "ms",
            target=f"< {TARGET_P95_MS:.0f} ms",
            met=ours["p95_ms"] < TARGET_P95_MS,
        ),
        figure("baseline (react-hooks) p50", round(base["p50_ms"], 1), "ms"),
        figure("baseline (react-hooks) p95", round(base["p95_ms"], 1), "ms"),
        figure(
            "p95 ratio ours/baseline",
            round(ratio, 2),
            "×",
            target=f"≤ {TARGET_RATIO}×",
            met=ratio <= TARGET_RATIO,
        ),
        figure(
            "changes measured per page",
            min(ours["n"], base["n"]),
            "",
            target="≥ 200",
            met=min(ours["n"], base["n"]) >= 200,
        ),
    ]
    return {
        "name": "latency",
        "date": today(),
        "machine": machine,
        "command": "bash bench/run.sh latency  (python -m bench.latency)",
        "rows": rows,
        "code": code,
        "setup": {
            "ours": "reflex run --env prod (granian, one port, one worker), Trigger.dev mode",
            "baseline": "@trigger.dev/react-hooks 4.8.3 useRealtimeRun, vite 8.3.8 bundle",
            "browser": machine.get("chromium"),
            "changes_per_page": changes,
            "warmup_discarded": WARMUP,
            "gap_s": gap,
            "fake_live_poll_timeout_s": app.live_poll_timeout,
            "app_startup_s": round(app.startup_seconds, 1),
            "upstream_realtime_requests_ours": len(upstream),
            "upstream_initial_requests_ours": sum("offset=-1" in q for q in upstream),
        },
        "clock_check": {"start": clock_start, "end": clock_end},
        "pages": per_page,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200, help="changes measured per page")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between two changes")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    args = parser.parse_args()
    result = run(args.changes, args.gap)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for row in result["rows"]:
        print(
            f"{row['metric']:<32} {row['value']} {row['unit']}  target {row['target']}  met {row['met']}"
        )
    print("load average at start:", result["machine"]["load_average_at_start"])
    print("clock check:", json.dumps(result["clock_check"]))
    print("ours breakdown:", json.dumps(result["pages"]["ours"]["breakdown"]))


if __name__ == "__main__":
    main()
