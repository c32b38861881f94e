#!/usr/bin/env bash
# Read cost of every dashboard read the bench measures, from the SQL the API itself runs
# (BENCHMARKS.md, appendix): EXPLAIN (ANALYZE, BUFFERS) of each statement at days=90.
#
# Needs a database the bench filled and kept, and its report:
#   DV_BENCH_KEEP=1 DV_BENCH_STAGES=reads cargo bench --locked --bench standard
#   scripts/read-costs/run.sh [DATABASE]     (default: the largest dv_bench_reads_* database)
# It runs `decision-views api` (release build) on that database with its statements logged
# (log_min_duration_statement=0 for its own connections only), requests each read of the
# report once, and reads the statements back from PostgreSQL's log (DV_READ_COSTS_PG_LOG,
# default Debian's /var/log/postgresql/postgresql-15-main.log). Prints a markdown table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
db="${1:-$(psql -X -h 127.0.0.1 -U postgres -tAc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'dv_bench_reads%' ORDER BY pg_database_size(datname) DESC LIMIT 1")}"
if [ -z "$db" ]; then
  echo "no dv_bench_reads_* database: run the bench with DV_BENCH_KEEP=1 DV_BENCH_STAGES=reads first" >&2
  exit 1
fi
[ -x target/release/decision-views ] || cargo build --release --locked --bin decision-views
echo "[read-costs] database $db" >&2
DV_READ_COSTS_DB="$db" python3 scripts/read-costs/explain.py
