#!/usr/bin/env bash
# Installs what the app needs (idempotently) and starts it: http://localhost:3000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
exec reflex run "$@"
