#!/usr/bin/env bash
# Local services for decision-views: PostgreSQL 15, Redis and a Kafka-protocol
# broker (tansu, persistent SQLite storage engine).
#
#   scripts/services.sh up       start/prepare everything (idempotent), and install Chromium
#                                and chromedriver for the browser test when absent
#   scripts/services.sh down     stop only what this script started
#   scripts/services.sh status   one line per service (exit 1 if any is not ready)
#   scripts/services.sh topics   create the Kafka topics (idempotent; broker must be up)
#
# Environment:
#   DV_STATE_DIR   state dir (pid/log files, tansu.db); default ~/.local/state/decision-views
#                  It lives outside the repository so several clones share one broker.
#   DV_KAFKA_PORT  broker port on 127.0.0.1 (default 9092)
#   DV_TOPIC_DECISION_TRACES, DV_TOPIC_INTERACTIONS, DV_TOPIC_SEGMENT_MEMBERSHIP,
#   DV_TOPIC_CATALOG, DV_TOPIC_SUPPRESSIONS, DV_TOPIC_ATTRIBUTIONS,
#   DV_TOPIC_MODEL_METRICS  topic name overrides
#   DV_TANSU_LOG   RUST_LOG filter for the broker (default "warn")
#   DV_PG_PORT, DV_PG_CLUSTER, DV_REDIS_PORT  only for testing this script against
#                  throw-away instances (defaults 5432, main, 6379)
#
# PostgreSQL: 127.0.0.1:5432, user postgres, trust auth; database decision_views.
# Redis:      127.0.0.1:6379.
# Kafka:      tcp://127.0.0.1:${DV_KAFKA_PORT:-9092}: tansu (cargo install tansu --locked
#             --features dynostore,libsql), storage sqlite://tansu.db in the state dir.
#             Topics are NOT auto-created; `up`/`topics` create them.
#
# tansu 0.6.0 caveats (verified):
#   * Deleting ANY topic (`tansu topic delete`, or an admin client's DeleteTopics)
#     deletes ALL topics of the cluster (bug in its topic_delete_by.sql). Do not delete
#     topics on the shared broker; `scripts/services.sh topics` re-creates ours (empty).
#   * No Kafka transactions (EndTxn unsupported): transactional producers fail.
#   * A consumer that dies without LeaveGroup keeps its partitions after its session
#     times out, until another member joins or leaves. Clean close() rebalances at once.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1; }

# psql as the postgres user over TCP, never prompting and ignoring any .pgpass,
# so that success really means "trust" authentication.
pg_sql() {
  env -u PGPASSWORD -u PGSERVICE PGPASSFILE=/nonexistent/dv-no-pgpass PGCONNECT_TIMEOUT=5 \
    psql -X -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

# Newest cluster version configured under /etc/postgresql (empty if none).
newest_version_in() { # dir: newest numeric subdirectory name (e.g. 15), empty if none
  local d best=""
  for d in "$1"/*/; do
    d=${d%/}
    d=${d##*/}
    [[ $d =~ ^[0-9]+$ ]] || continue
    if [[ -z $best ]] || ((d > best)); then best=$d; fi
  done
  printf '%s' "$best"
}

pg_version() { newest_version_in /etc/postgresql; }

pg_ctl_cluster() { # action [args...]
  local ver; ver=$(pg_version)
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" "$@"
}

pg_log_tail() {
  local ver; ver=$(pg_version)
  local f="/var/log/postgresql/postgresql-${ver}-${PG_CLUSTER}.log"
  [[ -r $f ]] && tail -n 20 "$f" | sed 's/^/[services]   | /' >&2 || true
}

pg_ensure_installed() {
  if have psql && have pg_ctlcluster && have pg_isready; then return 0; fi
  log "PostgreSQL client/server tools not found: installing the 'postgresql' package"
  apt_install postgresql
  if ! { have psql && have pg_ctlcluster && have pg_isready; }; then
    die "PostgreSQL installation did not provide psql/pg_ctlcluster/pg_isready"
  fi
}

pg_ensure_cluster() {
  local ver; ver=$(pg_version)
  if [[ -n $ver && -d /etc/postgresql/$ver/$PG_CLUSTER ]]; then return 0; fi
  if [[ -z $ver ]]; then
    ver=$(newest_version_in /usr/lib/postgresql)
    [[ -n $ver ]] || die "no PostgreSQL server found under /usr/lib/postgresql (is the postgresql package installed?)"
  fi
  log "no PostgreSQL cluster '$ver/$PG_CLUSTER' found: creating it (port $PG_PORT)"
  as_root pg_createcluster --port "$PG_PORT" "$ver" "$PG_CLUSTER" >/dev/null \
    || die "pg_createcluster $ver $PG_CLUSTER failed"
}

# Make sure the postgres user can connect over TCP 127.0.0.1 (and ::1) without a password.
pg_ensure_trust() {
  if pg_sql -c 'select 1' >/dev/null 2>&1; then return 0; fi
  local ver hba
  ver=$(pg_version)
  hba="/etc/postgresql/$ver/$PG_CLUSTER/pg_hba.conf"
  [[ -f $hba ]] || die "cannot connect as postgres to $PG_HOST:$PG_PORT and $hba does not exist"
  if ! grep -q "$HBA_MARKER" "$hba"; then
    log "enabling trust authentication for 127.0.0.1/32 and ::1/128 in $hba (backup: $hba.dv-backup)"
    as_root cp -p "$hba" "$hba.dv-backup"
    local tmp; tmp=$(mktemp)
    # pg_hba.conf is first-match-wins: put our lines before the first rule.
    awk -v marker="$HBA_MARKER" '
      !done && /^[[:space:]]*(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)[[:space:]]/ {
        print marker
        print "host    all             all             127.0.0.1/32            trust"
        print "host    all             all             ::1/128                 trust"
        print ""
        done = 1
      }
      { print }
      END {
        if (!done) {
          print marker
          print "host    all             all             127.0.0.1/32            trust"
          print "host    all             all             ::1/128                 trust"
        }
      }' "$hba" >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
  fi
  pg_ctl_cluster reload >/dev/null 9>&- || die "could not reload PostgreSQL after editing $hba"
  local i
  for ((i = 0; i < 20; i++)); do
    pg_sql -c 'select 1' >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  pg_sql -c 'select 1' || true
  die "the postgres user still cannot connect to $PG_HOST:$PG_PORT without a password (check $hba)"
}

pg_ensure_roles_and_db() {
  local can_create
  can_create=$(pg_sql -c "select rolcreatedb or rolsuper from pg_roles where rolname = current_user") \
    || die "cannot query PostgreSQL as postgres"
  if [[ $can_create != t ]]; then
    log "granting CREATEDB to postgres (tests create their own databases)"
    pg_sql -c 'alter role postgres createdb' >/dev/null || die "cannot grant CREATEDB to postgres"
  fi
  # Mirror the reference machine: a login role named after the OS user (e.g. root),
  # so that plain `psql -h 127.0.0.1 -d ...` works too.
  local me; me=$(id -un)
  if [[ $me != postgres && $me =~ ^[a-z_][a-z0-9_]*$ ]]; then
    if [[ -z $(pg_sql -c "select 1 from pg_roles where rolname = '$me'") ]]; then
      log "creating PostgreSQL role '$me' (login, superuser) to mirror the reference machine"
      pg_sql -c "create role \"$me\" login superuser" >/dev/null || die "cannot create role $me"
    fi
  fi
  if [[ -z $(pg_sql -c "select 1 from pg_database where datname = '$APP_DB'") ]]; then
    log "creating database $APP_DB"
    pg_sql -c "create database $APP_DB" >/dev/null || die "cannot create database $APP_DB"
  else
    log "database $APP_DB exists"
  fi
}

postgres_up() {
  pg_ensure_installed
  pg_ensure_cluster
  local ver; ver=$(pg_version)
  if pg_ready; then
    log "postgres: already running on $PG_HOST:$PG_PORT (cluster $ver/$PG_CLUSTER)"
  else
    log "postgres: not running, starting cluster $ver/$PG_CLUSTER"
    if ! pg_ctl_cluster start 9>&-; then
      pg_lsclusters >&2 || true
      pg_log_tail
      die "could not start PostgreSQL cluster $ver/$PG_CLUSTER"
    fi
    printf '%s %s\n' "$ver" "$PG_CLUSTER" >"$STATE_DIR/postgres.started-by-services"
    wait_for "PostgreSQL on $PG_HOST:$PG_PORT" 60 pg_ready || { pg_lsclusters >&2 || true; pg_log_tail; die "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT"; }
    log "postgres: started (cluster $ver/$PG_CLUSTER)"
  fi
  pg_ensure_trust
  pg_ensure_roles_and_db
}

postgres_down() {
  local marker="$STATE_DIR/postgres.started-by-services"
  if [[ ! -f $marker ]]; then
    log "postgres: not started by this script, leaving it alone"
    return 0
  fi
  local ver cluster
  read -r ver cluster <"$marker" || true
  cluster=${cluster:-$PG_CLUSTER}
  if have pg_ctlcluster && pg_ready; then
    log "postgres: stopping cluster $ver/$cluster (started by this script)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" stop -m fast || warn "could not stop PostgreSQL cluster $ver/$cluster"
  else
    log "postgres: already stopped"
  fi
  rm -f "$marker"
}

postgres_status() {
  local who=""
  [[ -f $STATE_DIR/postgres.started-by-services ]] && who=", started by this script"
  if ! have pg_isready; then
    echo "[services] postgres: NOT INSTALLED"
    return 1
  elif pg_ready; then
    local db="database $APP_DB missing"
    [[ -n $(pg_sql -c "select 1 from pg_database where datname = '$APP_DB'" 2>/dev/null) ]] && db="database $APP_DB present"
    echo "[services] postgres: running on $PG_HOST:$PG_PORT ($db$who)"
  else
    echo "[services] postgres: NOT RUNNING on $PG_HOST:$PG_PORT"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

redis_ping() { [[ $(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_up() {
  if ! have redis-server || ! have redis-cli; then
    log "redis-server not found: installing the 'redis-server' package"
    apt_install redis-server
    if ! { have redis-server && have redis-cli; }; then
      die "redis-server installation did not provide redis-server/redis-cli"
    fi
  fi
  if redis_ping; then
    log "redis: already running on $REDIS_HOST:$REDIS_PORT"
    return 0
  fi
  log "redis: not running, starting redis-server on $REDIS_HOST:$REDIS_PORT"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$STATE_DIR" --logfile "$STATE_DIR/redis.log" --pidfile "$STATE_DIR/redis.pid" 9>&- \
    || die "redis-server failed to start (see $STATE_DIR/redis.log)"
  touch "$STATE_DIR/redis.started-by-services"
  wait_for "Redis PONG on $REDIS_HOST:$REDIS_PORT" 30 redis_ping \
    || { tail -n 20 "$STATE_DIR/redis.log" >&2 2>/dev/null || true; die "Redis is not answering PING on $REDIS_HOST:$REDIS_PORT"; }
  log "redis: started"
}

redis_down() {
  local marker="$STATE_DIR/redis.started-by-services"
  if [[ ! -f $marker ]]; then
    log "redis: not started by this script, leaving it alone"
    return 0
  fi
  if have redis-cli && redis_ping; then
    log "redis: stopping (started by this script)"
    timeout 10 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 20; i++)); do redis_ping || break; sleep 0.5; done
    redis_ping && warn "redis is still answering on $REDIS_HOST:$REDIS_PORT"
  else
    log "redis: already stopped"
  fi
  rm -f "$marker"
}

redis_status() {
  local who=""
  [[ -f $STATE_DIR/redis.started-by-services ]] && who=" (started by this script)"
  if ! have redis-cli; then
    echo "[services] redis: NOT INSTALLED"
    return 1
  elif redis_ping; then
    echo "[services] redis: running on $REDIS_HOST:$REDIS_PORT$who"
  else
    echo "[services] redis: NOT RUNNING on $REDIS_HOST:$REDIS_PORT"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# Kafka (tansu)
# ---------------------------------------------------------------------------

tansu_up() {
  tansu_ensure_installed
  local pid
  if pid=$(tansu_pid); then
    if kafka_port_open || wait_for "tansu on $KAFKA_HOST:$KAFKA_PORT" 30 kafka_port_open; then
      log "kafka: tansu already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
      tansu_wait_api
      return 0
    fi
    tansu_log_tail
    die "tansu (pid $pid) is running but not listening on $KAFKA_HOST:$KAFKA_PORT (try: $0 down && $0 up)"
  fi
  if kafka_port_open; then
    warn "kafka: port $KAFKA_HOST:$KAFKA_PORT is already in use by a process this script did not start: $(port_owner "$KAFKA_PORT")"
    local owner; owner=$(port_owner "$KAFKA_PORT")
    if grep -q 'tansu' <<<"$owner" && ! grep -qE 'sqlite://|postgres(ql)?://|s3://|slatedb://' <<<"$owner"; then
      warn "kafka: that tansu has no persistent --storage-engine on its command line (tansu's default is memory://): its topics/data may not survive a restart"
    fi
    warn "kafka: using it as is ('down' will not stop it)"
    tansu_wait_api
    return 0
  fi

  rm -f "$TANSU_PID_FILE"
  log "kafka: starting tansu $(tansu_version) on $KAFKA_HOST:$KAFKA_PORT (storage $TANSU_STORAGE in $STATE_DIR, log $TANSU_LOG_FILE)"
  {
    printf '\n===== %s starting: %s\n' "$(date -u +%FT%TZ)" "$(tansu_broker_cmd | tr '\n' ' ')"
  } >>"$TANSU_LOG_FILE"
  local cmd=()
  mapfile -t cmd < <(tansu_broker_cmd)
  (
    cd "$STATE_DIR"
    # Only the flags below configure the broker: drop tansu/clap env fallbacks
    # (CLUSTER_ID, STORAGE_ENGINE, SCHEMA_REGISTRY, ...) inherited from the caller.
    # The inner bash writes its own pid ($$, the pid tansu gets after exec) to the pid file.
    # shellcheck disable=SC2016
    exec env -u CLUSTER_ID -u LISTENER_URL -u ADVERTISED_LISTENER_URL -u STORAGE_ENGINE \
      -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT -u DATA_LAKE \
      RUST_LOG="${DV_TANSU_LOG:-warn}" NO_COLOR=1 \
      nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$TANSU_PID_FILE" "${cmd[@]}" \
      </dev/null >>"$TANSU_LOG_FILE" 2>&1 9>&- &
  )
  local i
  for ((i = 0; i < 50; i++)); do [[ -s $TANSU_PID_FILE ]] && break; sleep 0.1; done
  pid=$(cat "$TANSU_PID_FILE" 2>/dev/null || true)
  [[ -n $pid ]] || die "tansu did not start (no pid file $TANSU_PID_FILE; see $TANSU_LOG_FILE)"
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$TANSU_PID_FILE"
      tansu_log_tail
      die "tansu exited during startup (see $TANSU_LOG_FILE)"
    fi
    kafka_port_open && break
    sleep 0.5
  done
  kafka_port_open || { tansu_log_tail; die "tansu (pid $pid) is not accepting connections on $KAFKA_HOST:$KAFKA_PORT after 60s"; }
  tansu_wait_api
  log "kafka: tansu started (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
}

# The broker answers the Kafka protocol (Metadata request via `tansu topic list`).
tansu_wait_api() {
  wait_for "Kafka Metadata response from $KAFKA_HOST:$KAFKA_PORT" 30 tansu_topic_list_quiet \
    || { tansu_log_tail; die "the broker on $KAFKA_HOST:$KAFKA_PORT accepts connections but does not answer Metadata requests"; }
}
tansu_topic_list_quiet() { tansu_topic_list >/dev/null 2>&1; }

tansu_down() {
  local pid
  if ! pid=$(tansu_pid); then
    rm -f "$TANSU_PID_FILE"
    if kafka_port_open; then
      log "kafka: no broker started by this script; $KAFKA_HOST:$KAFKA_PORT is served by another process, leaving it alone: $(port_owner "$KAFKA_PORT")"
    else
      log "kafka: tansu not running"
    fi
    return 0
  fi
  log "kafka: stopping tansu (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "tansu (pid $pid) did not exit after SIGTERM within 10s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  kill -0 "$pid" 2>/dev/null && die "could not stop tansu (pid $pid)"
  rm -f "$TANSU_PID_FILE"
  log "kafka: tansu stopped"
}

tansu_status() {
  local pid
  if pid=$(tansu_pid); then
    if kafka_port_open; then
      local n; n=$(tansu_topic_names 2>/dev/null | wc -l || true)
      echo "[services] kafka: tansu running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT, $n topic(s), storage $STATE_DIR/$TANSU_DB_FILE"
    else
      echo "[services] kafka: tansu process $pid running but NOT LISTENING on $KAFKA_HOST:$KAFKA_PORT"
      return 1
    fi
  elif kafka_port_open; then
    echo "[services] kafka: $KAFKA_HOST:$KAFKA_PORT served by a process NOT started by this script: $(port_owner "$KAFKA_PORT")"
  else
    echo "[services] kafka: NOT RUNNING on $KAFKA_HOST:$KAFKA_PORT"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------

topics_up() {
  find_tansu >/dev/null || die "tansu is not installed (run: $0 up)"
  kafka_port_open || die "no broker on $KAFKA_HOST:$KAFKA_PORT (run: $0 up)"
  local existing
  existing=$(tansu_topic_names) || die "could not list topics on $KAFKA_HOST:$KAFKA_PORT"
  local created=0 present=0 spec name partitions out
  for spec in "${TOPICS[@]}"; do
    name=${spec%%:*}
    partitions=${spec##*:}
    if grep -qxF -- "$name" <<<"$existing"; then
      present=$((present + 1))
      continue
    fi
    if out=$(tansu_topic_create "$name" "$partitions" 2>&1); then
      log "topic $name: created ($partitions partition(s))"
      created=$((created + 1))
    elif grep -qi 'already exists' <<<"$out"; then
      # Created concurrently by someone else between list and create.
      log "topic $name: already exists"
      present=$((present + 1))
    else
      printf '%s\n' "$out" | sed 's/^/[services]   | /' >&2
      die "could not create topic $name"
    fi
  done
  # Verify (and flag existing topics whose partition count differs from the spec).
  existing=$(tansu_topic_names) || die "could not list topics on $KAFKA_HOST:$KAFKA_PORT"
  local counts actual
  counts=$(tansu_topic_partition_counts 2>/dev/null || true)
  for spec in "${TOPICS[@]}"; do
    name=${spec%%:*}
    partitions=${spec##*:}
    grep -qxF -- "$name" <<<"$existing" || die "topic $name is missing after creation"
    actual=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$counts")
    if [[ -n $actual && $actual != "$partitions" ]]; then
      warn "topic $name has $actual partition(s), expected $partitions (delete it with: tansu topic delete $name --broker $KAFKA_URL, then re-run '$0 topics')"
    fi
  done
  log "topics: ${#TOPICS[@]} ready ($created created, $present already present): ${TOPICS[*]}"
}

# ---------------------------------------------------------------------------

usage() {
  cat <<EOF
usage: $(basename "$0") up|down|status|topics

  up      ensure PostgreSQL (127.0.0.1:$PG_PORT, db $APP_DB), Redis (127.0.0.1:$REDIS_PORT)
          and the tansu Kafka broker (127.0.0.1:$KAFKA_PORT) are running; create topics
  down    stop what this script started (tansu; PostgreSQL/Redis only if it started them)
  status  one line per service
  topics  create the Kafka topics (idempotent)

state dir: $STATE_DIR
EOF
}

# Building librdkafka with TLS and SASL links the system's OpenSSL (rdkafka's "ssl" feature).
build_deps_up() {
  if dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
    log "build dependencies: libssl-dev and pkg-config present"
  else
    apt_install libssl-dev pkg-config
  fi
}

# The dashboard page's test drives Debian's Chromium through chromedriver, and the OpenAPI
# test runs schemathesis (PyPI) against a live instance (issue 15).
SCHEMATHESIS_VERSION=4.32.5
browser_up() {
  if have chromium && have chromedriver; then
    log "browser: $(chromium --version 2>/dev/null | head -1), chromedriver ready"
  else
    apt_install chromium chromium-driver
  fi
  if have st && st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "schemathesis $SCHEMATHESIS_VERSION ready"
  else
    have python3 || die "python3 not found: needed for schemathesis"
    log "pip install schemathesis==$SCHEMATHESIS_VERSION"
    python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION" </dev/null || die "pip install schemathesis failed"
    hash -r
    have st || die "schemathesis installed but 'st' is not on PATH"
  fi
}

main() {
  local sub=${1:-}
  case $sub in
    up)
      state_init
      lock_state
      postgres_up
      redis_up
      tansu_up
      topics_up
      build_deps_up
      browser_up
      log "all services ready: postgres://postgres@$PG_HOST:$PG_PORT/$APP_DB redis://$REDIS_HOST:$REDIS_PORT kafka $KAFKA_HOST:$KAFKA_PORT"
      ;;
    down)
      state_init
      lock_state
      tansu_down
      redis_down
      postgres_down
      ;;
    status)
      state_init
      local rc=0
      postgres_status || rc=1
      redis_status || rc=1
      tansu_status || rc=1
      return $rc
      ;;
    topics)
      state_init
      lock_state
      topics_up
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
