#!/usr/bin/env bash
# The main job on this machine: services up, the service running (ingest + API in one
# process), a synthetic workload flowing into Kafka, and the URL and a sample curl printed.
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

# A steady workload: ~2,000 events/s for a few minutes (catalog and segments first). A new
# seed per run: event ids include it, so a rerun adds new events instead of duplicates.
nohup "$bin" publish --traces 100000 --rate 2000 --tenants 3 --days 30 --seed "$(date +%s)" >"$state/publisher.log" 2>&1 &
echo $! >"$state/publisher.pid"

cat <<MSG

decision-views is running at http://$DV_HTTP_ADDR (logs: $state/service.log)
A synthetic workload is flowing (logs: $state/publisher.log).

Admin API key for tenant_0 (shown once): $key

  curl -s -H "X-API-Key: $key" -H "X-Tenant-Id: tenant_0" \\
    "http://$DV_HTTP_ADDR/api/v1/dashboard-data?type=daily_trend&days=7"

  curl -s -H "X-API-Key: $key" -H "X-Tenant-Id: tenant_0" "http://$DV_HTTP_ADDR/api/v1/ingest/status"

Stop with: scripts/dev.sh stop
MSG
