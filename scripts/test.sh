#!/usr/bin/env bash
# The whole test suite, on real services: makes the machine ready (PostgreSQL, Redis, the
# Kafka-protocol broker), then runs formatting and lint gates and every test of the workspace.
#
#   scripts/test.sh                 everything
#   scripts/test.sh crash           only tests whose name contains "crash" (cargo test filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh up

# Each integration test creates a database named dv_test_<random>; drop the ones left by
# earlier runs so they do not pile up.
stale=$(psql -X -w -h 127.0.0.1 -U postgres -d postgres -qAt \
  -c "SELECT datname FROM pg_database WHERE datname LIKE 'dv\_test\_%'" || true)
for db in $stale; do
  psql -X -w -h 127.0.0.1 -U postgres -d postgres -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
done

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "[test] cargo test"
cargo test --workspace --locked -- "$@"
