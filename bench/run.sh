#!/usr/bin/env bash
# Runs every benchmark on this machine and writes bench/results/*.json, then the summary
# table between the bench-summary markers of bench/README.md (bench/report.py).
#
#   bash bench/run.sh            # all nine
#   bash bench/run.sh latency    # one of: latency fanout throughput big_tables big_tables_views polling push csv_io big_runs
#   bash bench/run.sh fault_matrix   # the soak (tests/soak), its matrix into bench/results/
#   bash bench/run.sh perf   # issue 11 §4: latency, fan-out (500 tabs), http_json, push; medians of 3
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
source scripts/env.sh
[ -f bench/baseline/package-lock.json ] && npm ci --prefix bench/baseline --no-audit --no-fund --loglevel=error >/dev/null
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(latency fanout throughput big_tables big_tables_views polling push csv_io big_runs)
for name in "${names[@]}"; do
  echo "== bench: $name"
  if [ "$name" = fault_matrix ]; then
    SOAK_RESULTS_DIR=bench/results pytest tests/soak -p no:cacheprovider
  elif [ "$name" = big_tables_views ]; then
    python -m bench.big_tables --views --sizes 100000
  else
    python -m "bench.$name"
  fi
done
python -m bench.report
