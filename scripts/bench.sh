#!/usr/bin/env bash
# the performance bar's figures (docs/guarantees.md 7) from one run (see README "Benchmarks" and BENCHMARKS.md):
#   scripts/bench.sh                  the standard configuration (about 13 minutes here)
#   DV_BENCH_QUICK=1 scripts/bench.sh a smoke run (about 2 minutes)
# Makes PostgreSQL, Redis and the tansu binary ready (the bench starts its own tansu on the
# memory engine on a free port), installs wrk if missing, builds in release mode and prints
# the Markdown report, also written to target/bench/report.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh up
if ! command -v wrk >/dev/null; then
  echo "[bench] installing wrk (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
fi
mkdir -p target/bench
cargo bench --locked --bench standard | tee target/bench/report.md
