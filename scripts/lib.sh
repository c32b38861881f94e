# shellcheck shell=bash
# Helpers and configuration for scripts/services.sh (sourced, not executed).

# ---------------------------------------------------------------------------
# Configuration (used by services.sh)
# ---------------------------------------------------------------------------
# shellcheck disable=SC2034

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME

STATE_DIR=${DV_STATE_DIR:-$HOME/.local/state/decision-views}

# The ports/cluster below are fixed by the project (5432, 6379, cluster "main");
# DV_PG_PORT, DV_PG_CLUSTER and DV_REDIS_PORT exist only to test this script
# against throw-away instances.
PG_HOST=127.0.0.1
PG_PORT=${DV_PG_PORT:-5432}
PG_CLUSTER=${DV_PG_CLUSTER:-main}
APP_DB=decision_views
HBA_MARKER='# decision-views scripts/services.sh: trust local TCP connections'

REDIS_HOST=127.0.0.1
REDIS_PORT=${DV_REDIS_PORT:-6379}

KAFKA_HOST=127.0.0.1
KAFKA_PORT=${DV_KAFKA_PORT:-9092}
for _p in "$KAFKA_PORT" "$PG_PORT" "$REDIS_PORT"; do
  [[ $_p =~ ^[0-9]+$ ]] || { echo "[services] ERROR: port must be a number, got '$_p'" >&2; exit 1; }
done
unset _p
KAFKA_URL="tcp://$KAFKA_HOST:$KAFKA_PORT"

TANSU_CLUSTER_ID=tansu_cluster # tansu's default; stored with every row of tansu.db
TANSU_DB_FILE=tansu.db         # relative to STATE_DIR (tansu resolves sqlite:// paths against its cwd)
TANSU_STORAGE="sqlite://$TANSU_DB_FILE"
TANSU_PID_FILE=$STATE_DIR/tansu.pid
TANSU_LOG_FILE=$STATE_DIR/tansu.log
# Pinned: the quirks README.md and the tests work around are 0.6.0's.
# shellcheck disable=SC2054 # the comma belongs to --features
TANSU_INSTALL_CMD=(cargo install tansu --version 0.6.0 --locked --features dynostore,libsql)

# name:partitions
TOPICS=(
  "${DV_TOPIC_DECISION_TRACES:-decision-traces}:4"
  "${DV_TOPIC_INTERACTIONS:-interactions}:4"
  "${DV_TOPIC_SEGMENT_MEMBERSHIP:-segment-membership}:4"
  "${DV_TOPIC_CATALOG:-catalog}:1"
  "${DV_TOPIC_SUPPRESSIONS:-suppressions}:1"
  "${DV_TOPIC_ATTRIBUTIONS:-attributions}:1"
  "${DV_TOPIC_MODEL_METRICS:-model-metrics}:1"
)

# ---------------------------------------------------------------------------
# Generic helpers
# ---------------------------------------------------------------------------

log() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo -n "$@"
  else
    die "need root for: $* (run as root or install sudo)"
  fi
}

_APT_UPDATED=0
apt_install() {
  have apt-get || die "apt-get not found: install $* manually"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $_APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    as_root apt-get update -q </dev/null || die "apt-get update failed"
    _APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  # 9>&-: packages' postinst may start daemons; they must not inherit the state lock.
  as_root apt-get install -y -q --no-install-recommends "$@" </dev/null 9>&- || die "apt-get install $* failed"
}

# wait_for DESCRIPTION SECONDS COMMAND [ARGS...]: poll every 0.5s.
wait_for() {
  local what=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs)) announced=0
  while ! "$@"; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    if ((announced == 0)); then
      log "waiting for $what (up to ${secs}s)"
      announced=1
    fi
    sleep 0.5
  done
}

state_init() {
  mkdir -p "$STATE_DIR" || die "cannot create state dir $STATE_DIR"
}

# Serialise up/down/topics (fd 9; every daemon we start gets 9>&- so it does not hold the lock) between concurrent runs (several clones share one state dir).
lock_state() {
  have flock || return 0
  exec 9>"$STATE_DIR/.services.lock"
  if ! flock -n 9; then
    log "another services.sh run holds $STATE_DIR/.services.lock, waiting"
    flock -w 1800 9 || die "timed out waiting for $STATE_DIR/.services.lock"
  fi
}

# TCP connect check (bash /dev/tcp, no extra tools).
port_open() { # host port
  # shellcheck disable=SC2016 # $0/$1 are expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}
kafka_port_open() { port_open "$KAFKA_HOST" "$KAFKA_PORT"; }

# Describe who listens on a local TCP port: "pid N: cmdline".
port_owner() {
  local port=$1 line pid
  line=$(ss -H -ltnp "sport = :$port" 2>/dev/null | head -n1 || true)
  pid=$(grep -o 'pid=[0-9]*' <<<"$line" | head -n1 | cut -d= -f2 || true)
  if [[ -n $pid && -r /proc/$pid/cmdline ]]; then
    printf 'pid %s: %s' "$pid" "$(tr '\0' ' ' </proc/"$pid"/cmdline)"
  else
    printf 'unknown process'
  fi
}

# ---------------------------------------------------------------------------
# tansu
# ---------------------------------------------------------------------------

CARGO_BIN_DIR=${CARGO_HOME:-$HOME/.cargo}/bin

find_tansu() {
  if have tansu; then
    command -v tansu
  elif [[ -x $CARGO_BIN_DIR/tansu ]]; then
    printf '%s\n' "$CARGO_BIN_DIR/tansu"
  else
    return 1
  fi
}

tansu_bin() { find_tansu || die "tansu is not installed (run: scripts/services.sh up)"; }

tansu_version() { "$(tansu_bin)" --version 2>/dev/null | awk '{print $NF}'; }

other_tansu_install_running() { pgrep -f 'cargo[^ ]* install .*tansu' >/dev/null 2>&1; }

tansu_ensure_installed() {
  if ! find_tansu >/dev/null && other_tansu_install_running; then
    log "tansu is being installed by another 'cargo install' process, waiting for it to finish (~12 minutes)"
    while other_tansu_install_running; do sleep 10; done
  fi
  if ! find_tansu >/dev/null; then
    local cargo=cargo
    if ! have cargo; then
      [[ -x $CARGO_BIN_DIR/cargo ]] || die "tansu is not installed and cargo was not found (install Rust with rustup, then re-run)"
      cargo=$CARGO_BIN_DIR/cargo
    fi
    local install_log=$STATE_DIR/tansu-install.log
    log "tansu not found: installing it with '${TANSU_INSTALL_CMD[*]}'"
    log "this compiles ~700 crates and takes ~12 minutes on 2 cores (progress: tail -f $install_log)"
    if ! "$cargo" "${TANSU_INSTALL_CMD[@]:1}" </dev/null >"$install_log" 2>&1; then
      tail -n 30 "$install_log" | sed 's/^/[services]   | /' >&2
      die "cargo install tansu failed (full log: $install_log)"
    fi
    find_tansu >/dev/null || die "cargo install tansu succeeded but tansu is neither on PATH nor in $CARGO_BIN_DIR"
    log "tansu installed: $(find_tansu) ($(tansu_version))"
  fi
  # The persistent engine needs the libsql feature (sqlite:// URLs).
  if ! "$(tansu_bin)" --help 2>/dev/null | grep -q '^Storage engines:.*libsql'; then
    die "$(tansu_bin) was built without the libsql storage engine; reinstall: cargo install tansu --locked --force --features dynostore,libsql"
  fi
}

# The broker command line, one argument per line.
tansu_broker_cmd() {
  printf '%s\n' "$(tansu_bin)" broker \
    --cluster-id "$TANSU_CLUSTER_ID" \
    --storage-engine "$TANSU_STORAGE" \
    --listener-url "$KAFKA_URL" \
    --advertised-listener-url "$KAFKA_URL"
}

# pid of the broker this script started, if it is still alive.
tansu_pid() {
  local pid
  [[ -s $TANSU_PID_FILE ]] || return 1
  pid=$(<"$TANSU_PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'tansu' || return 1
  printf '%s\n' "$pid"
}

tansu_log_tail() {
  [[ -r $TANSU_LOG_FILE ]] || return 0
  tail -n 20 "$TANSU_LOG_FILE" | sed 's/^/[services]   | /' >&2
}

# tansu CLI client commands run from the state dir (tansu reads ./.env) with a quiet log.
tansu_client() {
  (cd "$STATE_DIR" && RUST_LOG=error NO_COLOR=1 timeout 30 "$(tansu_bin)" "$@" </dev/null)
}

tansu_topic_list() { tansu_client topic list --broker "$KAFKA_URL"; }

# Topic names, one per line.
tansu_topic_names() {
  local json
  json=$(tansu_topic_list) || return 1
  # `tansu topic list` prints the Metadata response topics as one JSON array:
  # [{"error_code":0,"name":"x","topic_id":[...],"partitions":[{...}],...}]
  # Only topic objects carry a "name" key.
  grep -o '"name":"[^"]*"' <<<"$json" | cut -d'"' -f4 || true
}

# "name partitions" per topic (needs jq; prints nothing without it).
tansu_topic_partition_counts() {
  have jq || return 0
  tansu_topic_list | jq -r '.[] | "\(.name) \(.partitions | length)"'
}

tansu_topic_create() { # name partitions
  tansu_client topic create "$1" --partitions "$2" --broker "$KAFKA_URL"
}
