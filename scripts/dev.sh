#!/usr/bin/env bash
# The main job on this machine: services up, the service running (ingest + API in one
# process), 30 days of synthetic history applied, live traffic flowing into Kafka, and the
# URL and a sample curl printed.
#
#   scripts/dev.sh          start (or restart) the service and a workload
#   scripts/dev.sh stop     stop the service and the workload (services keep running;
#                           `scripts/services.sh down` stops the broker)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
state="${DV_STATE_DIR:-$HOME/.local/state/decision-views}"
mkdir -p "$state"
bin=target/release/decision-views

stop_pidfile() {
  local f="$state/$1.pid"
  if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
    kill -TERM "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

if [[ ${1:-} == stop ]]; then
  stop_pidfile publisher
  stop_pidfile service
  echo "[dev] service and workload stopped"
  exit 0
fi

bash scripts/services.sh up
echo "[dev] building (release)"
cargo build --release --locked --bin decision-views

export DV_HTTP_ADDR="${DV_HTTP_ADDR:-127.0.0.1:8080}"
stop_pidfile publisher
stop_pidfile service
"$bin" migrate >/dev/null
key=$("$bin" create-api-key --tenant tenant_0 --role admin --name dev.sh)

nohup "$bin" run >"$state/service.log" 2>&1 &
echo $! >"$state/service.pid"
for _ in $(seq 1 100); do
  curl -fsS "http://$DV_HTTP_ADDR/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://$DV_HTTP_ADDR/readyz" >/dev/null || { echo "[dev] the service did not become ready; see $state/service.log" >&2; exit 1; }

# First 30 days of history, as fast as the broker takes them, so that the first curl (and the
# page at /) shows data at once; then a live stream with current event times. A new seed per
# run: event ids include it, so a rerun adds new events instead of duplicates.
seed=$(date +%s)
echo "[dev] publishing 30 days of history: 10,000 traces with their interactions, catalog and segments"
"$bin" publish --traces 10000 --rate 0 --tenants 3 --days 30 --seed "$seed" 2>&1 \
  | while IFS= read -r line; do printf '\r  %s   ' "$line"; done
echo
published=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
echo "[dev] waiting for ingest to apply it"
as_of=""
for _ in $(seq 1 600); do
  as_of=$(curl -fsS -H "X-API-Key: $key" -H "X-Tenant-Id: tenant_0" "http://$DV_HTTP_ADDR/api/v1/ingest/status" 2>/dev/null \
    | sed -n 's/.*"dataAsOf":"\([^"]*\)".*/\1/p')
  [[ -n $as_of && ! $as_of < $published ]] && break
  printf '\r  views complete up to %s   ' "${as_of:-(not yet)}"
  sleep 0.2
done
echo
[[ -n $as_of && ! $as_of < $published ]] || echo "[dev] ingest has not caught up after 2 minutes; see $state/service.log" >&2

# Live traffic from now on: ~200 traces/s (~1,000 events/s) with current event times.
nohup "$bin" publish --live --skip-catalog --traces 100000000 --rate 1000 --tenants 3 --seed "$((seed + 1))" \
  >"$state/publisher.log" 2>&1 &
echo $! >"$state/publisher.pid"

cat <<MSG

decision-views is running at http://$DV_HTTP_ADDR (logs: $state/service.log)
30 days of history are in, and live traffic is flowing (logs: $state/publisher.log).
The dashboards: http://$DV_HTTP_ADDR/ (sign in with the key below and tenant_0).

Admin API key for tenant_0 (shown once): $key

  curl -s -H "X-API-Key: $key" -H "X-Tenant-Id: tenant_0" \\
    "http://$DV_HTTP_ADDR/api/v1/dashboard-data?type=daily_trend&days=7"

  curl -s -H "X-API-Key: $key" -H "X-Tenant-Id: tenant_0" "http://$DV_HTTP_ADDR/api/v1/ingest/status"

Stop with: scripts/dev.sh stop
MSG
