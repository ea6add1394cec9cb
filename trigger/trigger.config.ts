import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pythonExtension } from "@trigger.dev/python/extension";
import { defineConfig } from "@trigger.dev/sdk";

// The project ref ("proj_…") is on the Trigger.dev dashboard under Project settings. Set
// TRIGGER_PROJECT_REF when running `trigger.dev dev`/`deploy`; the placeholder only lets the
// config load without it (e.g. for `tsc`), the CLI rejects it.
const project = process.env.TRIGGER_PROJECT_REF ?? "proj_set_TRIGGER_PROJECT_REF";

// Run the CLI from this directory (trigger/). Relative paths below mean different things:
// - `scripts` globs are resolved against this config file's directory and copied into the
//   build with leading "../" stripped, so ../enrichment_app/**/*.py lands at
//   <build>/enrichment_app/… (on a deployed machine /app/enrichment_app, the task's cwd).
// - `requirementsFile` is read relative to the CLI's working directory and used verbatim in
//   the generated Dockerfile (`COPY ../requirements.txt .` then `pip install -r
//   ../requirements.txt`, both at the image root, where "../" resolves to the context root
//   and to "/"). It must stay a relative path.
// (@trigger.dev/python 4.5.10, dist/esm/extension.js; @trigger.dev/build 4.8.3,
// dist/esm/internal/copyFiles.js)
const repoVenvPython = resolve("../.venv/bin/python");

export default defineConfig({
  project,
  dirs: ["./src/trigger"],
  // Compute seconds per run; a job is capped at MAX_CELLS_PER_JOB (5000) cells.
  maxDuration: 3600,
  retries: {
    enabledInDev: false,
    default: {
      maxAttempts: 2,
      minTimeoutInMs: 1_000,
      maxTimeoutInMs: 10_000,
      factor: 2,
      randomize: true,
    },
  },
  build: {
    extensions: [
      pythonExtension({
        requirementsFile: "../requirements.txt",
        scripts: ["../enrichment_app/**/*.py"],
        // Dev only: the task spawns $PYTHON_BIN_PATH; default to the repo's virtualenv
        // (made by scripts/bootstrap.sh). Deployed images use /opt/venv/bin/python.
        devPythonBinaryPath:
          process.env.PYTHON_BIN_PATH ?? (existsSync(repoVenvPython) ? repoVenvPython : undefined),
      }),
    ],
  },
});
