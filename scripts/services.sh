#!/usr/bin/env bash
# Starts, stops and checks the local services the tests and the demo talk to:
#   RabbitMQ  amqp://guest:guest@127.0.0.1:5672  (node rabbit@localhost)
#   moto      http://127.0.0.1:4566              (SNS/SQS endpoint, moto's server)
# Everything binds to the loopback interface only, including epmd and the
# Erlang distribution port of the RabbitMQ node.
#
# Usage: scripts/services.sh start|stop|status [rabbitmq|moto]...
#        scripts/services.sh ctl ARGS...     (rabbitmqctl against our node)
#
# Idempotent: `start` leaves a service that already answers alone.
# Logs and pid files: $EP_SERVICES_DIR (default /tmp/mongoose_event_pusher).
set -euo pipefail

EP_SERVICES_DIR=${EP_SERVICES_DIR:-/tmp/mongoose_event_pusher}
RABBITMQ_PORT=${RABBITMQ_PORT:-5672}
MOTO_PORT=${MOTO_PORT:-4566}
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

# --- main -------------------------------------------------------------------

usage() {
    echo "usage: $0 start|stop|status [rabbitmq|moto]...   |   $0 ctl RABBITMQCTL_ARGS..." >&2
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
[ ${#services[@]} -gt 0 ] || services=(rabbitmq moto)
rc=0
for s in "${services[@]}"; do
    case "$s" in rabbitmq | moto) ;; *) usage ;; esac
    case "$action" in
        start | stop | status) "${s}_${action}" || rc=1 ;;
        *) usage ;;
    esac
done
exit $rc
