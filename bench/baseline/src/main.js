// The latency baseline: the seed's architecture, the browser subscribing straight to
// Trigger.dev (here the fake server) with the official hook and a public access token.
// The run id, token and API URL come from the query string:
//   /?run=run_…&token=…&api=http://127.0.0.1:PORT
// The status is rendered in the page's words, as the app's header shows it, into #job-status.
import { createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { useRealtimeRun } from "@trigger.dev/react-hooks";

const params = new URLSearchParams(window.location.search);

function label(run) {
  if (!run) return "Starting…";
  const progress = (run.metadata && run.metadata.progress) || {};
  const done = (progress.done || 0) + (progress.failed || 0);
  switch (run.status) {
    case "QUEUED":
      return "In Queue…";
    case "DEQUEUED":
    case "EXECUTING":
    case "WAITING":
      return `Enriching… (${done}/${progress.total || 0})`;
    case "COMPLETED":
      return "Enriched!";
    default:
      return run.status;
  }
}

function Status() {
  const { run, error } = useRealtimeRun(params.get("run"), {
    accessToken: params.get("token"),
    baseURL: params.get("api"),
  });
  return h(
    "div",
    null,
    h("span", { id: "job-status" }, label(run)),
    error ? h("pre", { id: "error" }, String(error)) : null,
  );
}

createRoot(document.getElementById("root")).render(h(Status));
