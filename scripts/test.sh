#!/usr/bin/env bash
# Installs everything the tests need (idempotently) and runs the whole suite:
# lint, type checks, unit + integration + state tests, then the browser end-to-end tests
# in their own pytest process (Reflex's test harness re-imports the app).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
source scripts/env.sh
mkdir -p test-artifacts

echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy (strict, core)"
mypy
if [ -f trigger/package.json ]; then
  echo "== tsc (trigger/)"
  (cd trigger && npx --no-install tsc --noEmit)
  echo "== node --test (trigger/: the relay from worker lines to run metadata and cells)"
  (cd trigger && npx --no-install tsc -p tsconfig.test.json && node --test build/test/)
fi
echo "== pytest: unit, integration, state, fuzzing"
pytest tests --ignore=tests/e2e --ignore=tests/soak --ignore=tests/topology --ignore=tests/security/live "$@"
echo "== pytest: cross-site attacks on the running app (reflex run --env prod, and bash scripts/run.sh)"
pytest tests/security/live "$@"
echo "== pytest: browser end-to-end, local runner (Debian Chromium via Playwright)"
pytest tests/e2e --ignore=tests/e2e/trigger "$@"
echo "== pytest: browser end-to-end, Trigger.dev mode against the fake server"
pytest tests/e2e/trigger "$@"
if [ -d tests/soak ]; then
  echo "== pytest: fault matrix soak (Trigger.dev mode against the fake, and local mode)"
  pytest tests/soak "$@"
fi
if [ -d tests/topology ]; then
  echo "== pytest: production topology (PostgreSQL, Redis state manager, 3 backend workers)"
  pytest tests/topology "$@"
fi
