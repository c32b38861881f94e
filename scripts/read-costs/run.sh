#!/usr/bin/env bash
# Read cost per dashboard type for a 90-day window (see BENCHMARKS.md): creates a scratch
# database, applies the migrations, fills the views to the performance bar's shape (docs/guarantees.md 7), prints a markdown table
# of access path, rows read, buffers and time per query, and drops the database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
db="${DV_READ_COSTS_DB:-dv_read_costs}"
psql() { command psql -X -h 127.0.0.1 -U postgres "$@"; }
psql -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for f in migrations/*.sql; do psql -d "$db" -q -v ON_ERROR_STOP=1 -f "$f"; done
psql -d "$db" -q -v ON_ERROR_STOP=1 -f scripts/read-costs/fill.sql
DV_READ_COSTS_DB="$db" python3 scripts/read-costs/measure.py
psql -qc "DROP DATABASE $db"
