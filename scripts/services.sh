#!/usr/bin/env bash
# Starts, stops and checks the local services the tests and the demo talk to:
#   RabbitMQ  amqp://guest:guest@127.0.0.1:5672  (node rabbit@localhost)
#   moto      http://127.0.0.1:4566              (SNS/SQS endpoint, moto's server)
#   postgres  127.0.0.1:5432, database/user/password ep_test/ep_test/ep_test_pw
#   mariadb   127.0.0.1:3306, database/user/password ep_test/ep_test/ep_test_pw
# Everything binds to the loopback interface only, including epmd and the
# Erlang distribution port of the RabbitMQ node. The two databases run from
# Debian's binaries with data dirs of their own under $EP_SERVICES_DIR (no
# systemd, Debian's clusters untouched); `start` also creates the test
# database and user and loads the push subscriptions table
# (mim_host/priv/pg.sql, mim_host/priv/mysql.sql) when it is missing.
#
# Usage: scripts/services.sh start|stop|status [rabbitmq|moto|postgres|mariadb]...
#        scripts/services.sh ctl ARGS...     (rabbitmqctl against our node)
#
# Idempotent: `start` leaves a service that already answers alone.
# Logs and pid files: $EP_SERVICES_DIR (default /tmp/mongoose_event_pusher).
set -euo pipefail

EP_SERVICES_DIR=${EP_SERVICES_DIR:-/tmp/mongoose_event_pusher}
RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
MOTO_PORT=${MOTO_PORT:-4566}
# The databases; the test suites read the same variables (test/support/ep_rdbms.erl).
EP_PG_PORT=${EP_PG_PORT:-5432}
EP_MARIADB_PORT=${EP_MARIADB_PORT:-3306}
EP_DB_NAME=${EP_DB_NAME:-ep_test}
EP_DB_USER=${EP_DB_USER:-ep_test}
EP_DB_PASSWORD=${EP_DB_PASSWORD:-ep_test_pw}
SCHEMA_DIR="$(cd "$(dirname "$0")/.." && pwd)/mim_host/priv"
PYTHON=${PYTHON:-python3}
# How long a service may take to come up.
START_DEADLINE_S=${EP_START_DEADLINE_S:-120}

# RabbitMQ reads these (rabbitmq-env); exported so rabbitmqctl finds the same node.
export RABBITMQ_NODENAME=${RABBITMQ_NODENAME:-rabbit@localhost}
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$RABBITMQ_PORT
export ERL_EPMD_ADDRESS=127.0.0.1
# The distribution listener of the broker and of the CLI nodes stays on loopback.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

log() { printf '[services] %s\n' "$*" >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- RabbitMQ ---------------------------------------------------------------

rabbitmq_ready() {
    port_open "$RABBITMQ_PORT" && rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1
}

rabbitmq_start() {
    if port_open "$RABBITMQ_PORT"; then
        # A broker already listens (ours from an earlier run, or one the operator runs).
        log "rabbitmq: already listening on 127.0.0.1:$RABBITMQ_PORT"
        return 0
    fi
    command -v rabbitmq-server >/dev/null || { log "rabbitmq: rabbitmq-server is not installed (run scripts/setup.sh)"; return 1; }
    local logf="$EP_SERVICES_DIR/rabbitmq.log"
    log "rabbitmq: starting $RABBITMQ_NODENAME on 127.0.0.1:$RABBITMQ_PORT (log: $logf)"
    # Debian's wrapper switches to the rabbitmq user and keeps our environment.
    # setsid: the broker outlives this script and ignores the caller's signals.
    setsid nohup rabbitmq-server >"$logf" 2>&1 </dev/null &
    echo $! >"$EP_SERVICES_DIR/rabbitmq.pid"
    local deadline=$((SECONDS + START_DEADLINE_S))
    until rabbitmq_ready; do
        if ! kill -0 "$(cat "$EP_SERVICES_DIR/rabbitmq.pid")" 2>/dev/null; then
            log "rabbitmq: the server exited during start; last lines of $logf:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "rabbitmq: not up after ${START_DEADLINE_S}s; last lines of $logf:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        sleep 1
    done
    log "rabbitmq: up"
}

rabbitmq_stop() {
    if ! port_open "$RABBITMQ_PORT"; then
        log "rabbitmq: not running"
        return 0
    fi
    if [ ! -f "$EP_SERVICES_DIR/rabbitmq.pid" ]; then
        # Only stop what this script started.
        log "rabbitmq: listening, but not started by this script; left alone"
        return 0
    fi
    rabbitmqctl -q stop >/dev/null 2>&1 || log "rabbitmq: rabbitmqctl stop failed"
    rm -f "$EP_SERVICES_DIR/rabbitmq.pid"
    log "rabbitmq: stopped"
}

rabbitmq_status() {
    if rabbitmq_ready; then echo "rabbitmq: up (127.0.0.1:$RABBITMQ_PORT, node $RABBITMQ_NODENAME)"
    elif port_open "$RABBITMQ_PORT"; then echo "rabbitmq: port 127.0.0.1:$RABBITMQ_PORT open, node $RABBITMQ_NODENAME not answering"
    else echo "rabbitmq: down"; return 1
    fi
}

# --- moto (SNS) -------------------------------------------------------------

moto_ready() {
    "$PYTHON" - "$MOTO_PORT" <<'PY' >/dev/null 2>&1
import sys, urllib.error, urllib.request
# moto's own API answers a plain GET; any HTTP answer means the server is up.
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2)
except urllib.error.HTTPError:
    pass
PY
}

moto_start() {
    if moto_ready; then
        log "moto: already answering on 127.0.0.1:$MOTO_PORT"
        return 0
    fi
    if port_open "$MOTO_PORT"; then
        log "moto: 127.0.0.1:$MOTO_PORT is taken by something that is not moto (set MOTO_PORT)"
        return 1
    fi
    "$PYTHON" -c 'import moto.server' 2>/dev/null || { log "moto: moto[server] is not installed (run scripts/setup.sh)"; return 1; }
    local logf="$EP_SERVICES_DIR/moto.log"
    log "moto: starting on 127.0.0.1:$MOTO_PORT (log: $logf)"
    setsid nohup "$PYTHON" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$logf" 2>&1 </dev/null &
    echo $! >"$EP_SERVICES_DIR/moto.pid"
    local deadline=$((SECONDS + START_DEADLINE_S))
    until moto_ready; do
        if ! kill -0 "$(cat "$EP_SERVICES_DIR/moto.pid")" 2>/dev/null; then
            log "moto: the server exited during start; last lines of $logf:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "moto: not up after ${START_DEADLINE_S}s; last lines of $logf:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    log "moto: up"
}

moto_stop() {
    local pidf="$EP_SERVICES_DIR/moto.pid"
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
        kill "$(cat "$pidf")"
        log "moto: stopped"
    else
        log "moto: not running (or not started by this script)"
    fi
    rm -f "$pidf"
}

moto_status() {
    if moto_ready; then echo "moto: up (http://127.0.0.1:$MOTO_PORT)"
    else echo "moto: down"; return 1
    fi
}

# --- PostgreSQL ---------------------------------------------------------------
# Debian's server binaries, run as the postgres user on a data dir of ours.
# Passwords are md5: Debian's p1_pgsql does SCRAM through p1_xmpp's stringprep
# and `jid', which the test host's own `jid' shadows.

PG_DIR="$EP_SERVICES_DIR/postgres"   # data/, the log, and the Unix socket

pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || return 1
    echo "$d/$1"
}

as_postgres() { runuser -u postgres -- "$@"; }

# psql as the superuser, through our server's socket.
pg_admin() {
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$EP_PG_PORT" "$@"
}

pg_ready() {
    "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$EP_PG_PORT" >/dev/null 2>&1
}

pg_ours() { [ -S "$PG_DIR/.s.PGSQL.$EP_PG_PORT" ]; }

# The test user and database, and the table, each only when missing.
pg_provision() {
    if ! pg_ours; then
        log "postgres: 127.0.0.1:$EP_PG_PORT is not our server; the test database is not provisioned"
        return 0
    fi
    if [ "$(pg_admin -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$EP_DB_USER'")" != 1 ]; then
        pg_admin -d postgres -c "CREATE ROLE $EP_DB_USER LOGIN PASSWORD '$EP_DB_PASSWORD'"
    fi
    if [ "$(pg_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$EP_DB_NAME'")" != 1 ]; then
        pg_admin -d postgres -c "CREATE DATABASE $EP_DB_NAME OWNER $EP_DB_USER ENCODING 'UTF8' TEMPLATE template0"
    fi
    if [ "$(pg_admin -d "$EP_DB_NAME" -tAc "SELECT to_regclass('public.event_pusher_push_subscription') IS NOT NULL")" != t ]; then
        log "postgres: loading $SCHEMA_DIR/pg.sql into $EP_DB_NAME"
        PGPASSWORD=$EP_DB_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$EP_PG_PORT" \
            -U "$EP_DB_USER" -d "$EP_DB_NAME" -f "$SCHEMA_DIR/pg.sql"
    fi
}

postgres_start() {
    if pg_ready; then
        log "postgres: already listening on 127.0.0.1:$EP_PG_PORT"
        pg_provision
        return
    fi
    local initdb pg_ctl
    initdb=$(pg_bin initdb) && pg_ctl=$(pg_bin pg_ctl) || { log "postgres: not installed (run scripts/setup.sh)"; return 1; }
    mkdir -p "$PG_DIR"
    chown postgres: "$PG_DIR"
    chmod 700 "$PG_DIR"
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        log "postgres: initialising $PG_DIR/data"
        as_postgres "$initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --no-locale \
            --auth-local=peer --auth-host=md5 >"$PG_DIR/initdb.log" 2>&1 \
            || { log "postgres: initdb failed:"; tail -n 20 "$PG_DIR/initdb.log" >&2; return 1; }
    fi
    log "postgres: starting on 127.0.0.1:$EP_PG_PORT (log: $PG_DIR/postgres.log)"
    # pg_ctl detaches the server; -w waits until it accepts connections.
    if ! as_postgres setsid "$pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
            -t "$START_DEADLINE_S" \
            -o "-c listen_addresses=127.0.0.1 -p $EP_PG_PORT -k $PG_DIR -c password_encryption=md5" start >/dev/null; then
        log "postgres: did not start; last lines of $PG_DIR/postgres.log:"
        tail -n 30 "$PG_DIR/postgres.log" >&2 || true
        return 1
    fi
    log "postgres: up"
    pg_provision
}

postgres_stop() {
    if ! pg_ours || [ ! -f "$PG_DIR/data/postmaster.pid" ]; then
        log "postgres: not running (or not started by this script)"
        return 0
    fi
    as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR/data" -m fast -w stop >/dev/null
    log "postgres: stopped"
}

postgres_status() {
    if pg_ready; then echo "postgres: up (127.0.0.1:$EP_PG_PORT, database $EP_DB_NAME)"
    else echo "postgres: down"; return 1
    fi
}

# --- MariaDB ----------------------------------------------------------------
# Debian's mariadbd, run as the mysql user on a data dir of ours, no my.cnf.

MARIADB_DIR="$EP_SERVICES_DIR/mariadb"   # data/, the socket, the pid file, the log
MARIADB_SOCKET="$MARIADB_DIR/mariadb.sock"

# The client as root, authenticated by the socket (unix_socket plugin).
mariadb_admin_sql() {
    mariadb --no-defaults --protocol=socket --socket="$MARIADB_SOCKET" -uroot "$@"
}

mariadb_ready() {
    # `ping' succeeds for a running server even when access is denied.
    port_open "$EP_MARIADB_PORT" && mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 \
        -P "$EP_MARIADB_PORT" -u ep_ping ping >/dev/null 2>&1
}

mariadb_ours() { [ -S "$MARIADB_SOCKET" ]; }

mariadb_provision() {
    if ! mariadb_ours; then
        log "mariadb: 127.0.0.1:$EP_MARIADB_PORT is not our server; the test database is not provisioned"
        return 0
    fi
    mariadb_admin_sql <<SQL
CREATE DATABASE IF NOT EXISTS $EP_DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$EP_DB_USER'@'localhost' IDENTIFIED BY '$EP_DB_PASSWORD';
CREATE USER IF NOT EXISTS '$EP_DB_USER'@'127.0.0.1' IDENTIFIED BY '$EP_DB_PASSWORD';
GRANT ALL PRIVILEGES ON $EP_DB_NAME.* TO '$EP_DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON $EP_DB_NAME.* TO '$EP_DB_USER'@'127.0.0.1';
SQL
    local present
    present=$(mariadb_admin_sql -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$EP_DB_NAME' AND table_name = 'event_pusher_push_subscription'")
    if [ "$present" != 1 ]; then
        log "mariadb: loading $SCHEMA_DIR/mysql.sql into $EP_DB_NAME"
        mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$EP_MARIADB_PORT" \
            -u "$EP_DB_USER" -p"$EP_DB_PASSWORD" "$EP_DB_NAME" <"$SCHEMA_DIR/mysql.sql"
    fi
}

mariadb_start() {
    if port_open "$EP_MARIADB_PORT"; then
        log "mariadb: already listening on 127.0.0.1:$EP_MARIADB_PORT"
        mariadb_provision
        return
    fi
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || { log "mariadb: not installed (run scripts/setup.sh)"; return 1; }
    mkdir -p "$MARIADB_DIR"
    chown mysql: "$MARIADB_DIR"
    chmod 750 "$MARIADB_DIR"
    if [ ! -d "$MARIADB_DIR/data/mysql" ]; then
        log "mariadb: initialising $MARIADB_DIR/data"
        mariadb-install-db --no-defaults --user=mysql --datadir="$MARIADB_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$MARIADB_DIR/install.log" 2>&1 \
            || { log "mariadb: mariadb-install-db failed:"; tail -n 20 "$MARIADB_DIR/install.log" >&2; return 1; }
    fi
    local logf="$MARIADB_DIR/mariadb.log"
    log "mariadb: starting on 127.0.0.1:$EP_MARIADB_PORT (log: $logf)"
    setsid nohup /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$MARIADB_DIR/data" \
        --socket="$MARIADB_SOCKET" --port="$EP_MARIADB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$MARIADB_DIR/mariadb.pid" --log-error="$logf" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        >/dev/null 2>&1 </dev/null &
    echo $! >"$EP_SERVICES_DIR/mariadb.pid"
    local deadline=$((SECONDS + START_DEADLINE_S))
    until mariadb_ours && mariadb_admin_sql -e 'SELECT 1' >/dev/null 2>&1; do
        if ! kill -0 "$(cat "$EP_SERVICES_DIR/mariadb.pid")" 2>/dev/null; then
            log "mariadb: the server exited during start; last lines of $logf:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "mariadb: not up after ${START_DEADLINE_S}s; last lines of $logf:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    log "mariadb: up"
    mariadb_provision
}

mariadb_stop() {
    if ! mariadb_ours; then
        log "mariadb: not running (or not started by this script)"
        return 0
    fi
    mariadb-admin --no-defaults --socket="$MARIADB_SOCKET" -uroot shutdown
    rm -f "$EP_SERVICES_DIR/mariadb.pid"
    log "mariadb: stopped"
}

mariadb_status() {
    if mariadb_ready; then echo "mariadb: up (127.0.0.1:$EP_MARIADB_PORT, database $EP_DB_NAME)"
    else echo "mariadb: down"; return 1
    fi
}

# --- main -------------------------------------------------------------------

usage() {
    echo "usage: $0 start|stop|status [rabbitmq|moto|postgres|mariadb]...   |   $0 ctl RABBITMQCTL_ARGS..." >&2
    exit 2
}

[ $# -ge 1 ] || usage
action=$1
shift
mkdir -p "$EP_SERVICES_DIR"

if [ "$action" = ctl ]; then
    exec rabbitmqctl "$@"
fi

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(rabbitmq moto postgres mariadb)
rc=0
for s in "${services[@]}"; do
    case "$s" in rabbitmq | moto | postgres | mariadb) ;; *) usage ;; esac
    case "$action" in
        start | stop | status) "${s}_${action}" || rc=1 ;;
        *) usage ;;
    esac
done
exit $rc
