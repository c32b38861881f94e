#!/usr/bin/env bash
# The whole test suite, on real services: makes the machine ready (PostgreSQL, Redis, the
# Kafka-protocol broker), then runs formatting and lint gates and every test of the workspace.
#
#   scripts/test.sh                 everything
#   scripts/test.sh crash           only tests whose name contains "crash" (cargo test filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh up

# Each integration test creates a database dv_test_<unix seconds>_<random> and leaves it
# behind. Drop the leftovers of earlier runs so they do not pile up, but never a database that
# a run going on beside this one (another terminal or checkout on the same PostgreSQL) uses:
#   - only databases created more than an hour ago (the time in the name: PostgreSQL keeps no
#     creation time), which covers the moments a live test's database has no session yet or
#     for a while (created, not yet connected; between a killed process and its restart);
#   - none with a session in pg_stat_activity, and dropped without FORCE, so that PostgreSQL
#     itself refuses one that a session connected to since (it checks atomically, after
#     waiting up to 5 s for such sessions to end), whatever its age.
# Names without a time (dv_test_<random>, written before it was added) rely on the second
# rule alone.
max_age_secs=3600
stale=$(psql -X -w -h 127.0.0.1 -U postgres -d postgres -qAt -c "
  SELECT datname FROM pg_database d
   WHERE datname LIKE 'dv\_test\_%'
     AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)
     AND CASE WHEN datname ~ '^dv_test_[0-9]+_'
              THEN split_part(datname, '_', 3)::bigint < extract(epoch FROM now())::bigint - $max_age_secs
              ELSE true END" || true)
dropped=0 in_use=0
for db in $stale; do
  if psql -X -w -h 127.0.0.1 -U postgres -d postgres -q -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1; then
    dropped=$((dropped + 1))
  else
    in_use=$((in_use + 1))
  fi
done
echo "[test] dropped $dropped leftover test databases ($in_use refused: in use)"

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "[test] cargo test"
cargo test --workspace --locked -- "$@"
