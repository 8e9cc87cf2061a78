#!/usr/bin/env bash
# The HTTP benchmark: one command, one local sink, one markdown table.
#   (c) wrk against the sink (the limit of the sink on this machine)
#   (b) MongooseIM's way: 100 callers, synchronous POST through 10 gun workers
#   (a) ours: the user_send_message hook through mod_event_pusher_http
#   (d) the Rust core's HttpPool alone (only when its bench binary builds)
# It builds what it runs (rebar3 test profile, the sink), talks to 127.0.0.1
# only, and installs nothing (scripts/setup.sh, if present, is offered when a
# tool is missing). Runs in about 3 minutes once built.
#
# Usage: scripts/bench_http.sh [--readme]   (--readme also puts the table in
# README.md's Performance section)
# Knobs (environment): BENCH_EVENTS=100000 BENCH_CALLERS=100 BENCH_WORKERS=10
#   SINK_THREADS=1 (the sink's tokio workers; 1 leaves the other core(s) to
#   the client measured), WRK_SECONDS=5, ROWS="c b a d", ROUNDS=3 (the rows
#   run in turn that many times; the table gives medians); ERL_FLAGS reaches
#   every BEAM after MongooseIM's own (bench/mongooseim_vm.sh); OURS_LIB=DIR runs row (a) with the
#   application in DIR/mongoose_event_pusher/{ebin,priv} instead of this
#   build, and CORE_BIN=FILE runs row (d) with that bench_core binary (copies
#   of an earlier build, to compare before/after: bench/ab_http.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/mongooseim_vm.sh
ROOT=$(pwd)
UPDATE_README=0
case "${1:-}" in
    --readme) UPDATE_README=1 ;;
    "") ;;
    *) printf 'usage: %s [--readme]\n' "$0" >&2; exit 2 ;;
esac

export BENCH_EVENTS=${BENCH_EVENTS:-100000}
export BENCH_CALLERS=${BENCH_CALLERS:-100}
export BENCH_WORKERS=${BENCH_WORKERS:-10}
SINK_THREADS=${SINK_THREADS:-1}
WRK_SECONDS=${WRK_SECONDS:-5}
ROWS=${ROWS:-"c b a d"}
ROUNDS=${ROUNDS:-3}
STEP_TIMEOUT=150

say() { printf '%s\n' "$*" >&2; }
die() { say "bench_http: $*"; exit 1; }

# --- tools ---------------------------------------------------------------
find_rmq_ebin() { # gun and cowlib as Debian's rabbitmq-server ships them
    ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/"$1"-*/ebin 2>/dev/null | sort | tail -1
}
missing_tools() {
    local t
    for t in cargo rebar3 erl erlc wrk python3; do
        command -v "$t" >/dev/null 2>&1 || printf '%s ' "$t"
    done
    [ -n "$(find_rmq_ebin gun)" ] || printf 'gun(rabbitmq-server) '
    [ -n "$(find_rmq_ebin cowlib)" ] || printf 'cowlib(rabbitmq-server) '
}
MISSING=$(missing_tools)
if [ -n "$MISSING" ] && [ -x scripts/setup.sh ]; then
    say "missing: $MISSING; running scripts/setup.sh"
    scripts/setup.sh
    MISSING=$(missing_tools)
fi
[ -z "$MISSING" ] || die "missing tools: $MISSING(Debian: wrk rabbitmq-server erlang-nox rebar3)"
GUN_EBIN=$(find_rmq_ebin gun)
COWLIB_EBIN=$(find_rmq_ebin cowlib)

# Other work on the machine skews every row; the table says how busy it was.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$ROOT/bench/results/http-$STAMP"
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"

# --- build ---------------------------------------------------------------
say "building (logs in $OUT)..."
# Row (a) needs the product (with the NIF) and the test host.
if [[ " $ROWS " == *" a "* ]]; then
    rebar3 as test compile >"$OUT/build.log" 2>&1 \
        || { tail -40 "$OUT/build.log" >&2; die "rebar3 as test compile failed"; }
fi
cargo build --release -p bench_sink --quiet 2>>"$OUT/build.log" || { tail -40 "$OUT/build.log" >&2; die "cargo build of bench_sink failed"; }
BENCH_EBIN="$ROOT/_build/bench/ebin"
mkdir -p "$BENCH_EBIN"
erlc -Werror +debug_info -I mim_host/include -I erlang/include -o "$BENCH_EBIN" bench/erlang/*.erl
. bench/test_host.sh
SUPPORT_EBIN="$ROOT/_build/bench/host_ebin"
[[ " $ROWS " != *" a "* ]] || test_host_ebin "$SUPPORT_EBIN" || die "build the test host first"
HAVE_CORE_BENCH=0
if [[ " $ROWS " == *" d "* ]] && cargo build --release -p bench_sink --features core \
        --bin bench_core --quiet 2>>"$OUT/build.log"; then
    HAVE_CORE_BENCH=1
fi

# --- the sink ------------------------------------------------------------
. bench/sink.sh
start_sink "$OUT/sink.log" "$SINK_THREADS"
say "sink on 127.0.0.1:$PORT ($SINK_THREADS worker thread(s))"

sink_get() { # prints "<requests> <bytes>" for GET $1 (/count or /reset)
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET %s HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n' "$1" >&3
    tail -n 1 <&3
    exec 3<&-
}

FAILED=""
OURS_PA=()
if [ -n "${OURS_LIB:-}" ]; then
    [ -f "$OURS_LIB/mongoose_event_pusher/ebin/mod_event_pusher_http.beam" ] \
        || die "OURS_LIB=$OURS_LIB holds no mongoose_event_pusher/ebin"
    # Last -pa is searched first: its beams, and (code:priv_dir) its NIF, win.
    OURS_PA=(-pa "$OURS_LIB/mongoose_event_pusher/ebin")
fi
run_erl() { # row module, then its output goes to the results
    local module=$1
    ERL_CRASH_DUMP="$OUT/$module.crash.dump" timeout "$STEP_TIMEOUT" erl -noshell +pc unicode \
        -pa "$ROOT"/_build/test/lib/*/ebin -pa "$SUPPORT_EBIN" \
        -pa "$GUN_EBIN" -pa "$COWLIB_EBIN" -pa "$BENCH_EBIN" "${OURS_PA[@]}" \
        -run "$module" main "$PORT" >"$OUT/$module.log" 2>&1 \
        || { tail -30 "$OUT/$module.log" >&2; say "$module failed (log: $OUT/$module.log)"
             FAILED="$FAILED $module"; return 0; }
    grep '^RESULT ' "$OUT/$module.log" >>"$RESULTS" \
        || { say "$module printed no result"; FAILED="$FAILED $module"; }
}

for round in $(seq 1 "$ROUNDS"); do
for row in $ROWS; do
    [ "$ROUNDS" = 1 ] || say "round $round of $ROUNDS"
    sink_get /reset >/dev/null
    read -r served0 sink_cpu0 < <(sink_usage)
    case $row in
    c)
        say "(c) wrk -t2 -c10 -d${WRK_SECONDS}s"
        # In a subshell, `times` then reports wrk's CPU time alone (2nd line).
        (wrk -t2 -c10 -d"${WRK_SECONDS}s" --latency -s bench/wrk/post.lua \
             "http://127.0.0.1:$PORT/notify" >"$OUT/wrk.log" 2>&1 && times >"$OUT/wrk.times") \
            || die "wrk failed: $(cat "$OUT/wrk.log")"
        read -r count bytes < <(sink_get /count)
        cpu_s=$(sed -n 2p "$OUT/wrk.times" | awk '{ t = 0; for (i = 1; i <= 2; i++) {
                    split($i, p, /[ms]/); t += p[1] * 60 + p[2] } print t }')
        awk -v count="$count" -v bytes="$bytes" -v cpu_s="$cpu_s" '
            /^Requests\/sec:/ { rps = $2 }
            /Non-2xx/ { bad = $NF }
            END { printf "RESULT row=c events_per_s=%s sink_count=%s sink_bytes=%s non_2xx=%d" \
                         " cpu_us_per_event=%.2f\n", rps, count, bytes, bad, cpu_s * 1e6 / count }' \
            "$OUT/wrk.log" >>"$RESULTS"
        ;;
    b)
        say "(b) MongooseIM's way: $BENCH_CALLERS callers, $BENCH_WORKERS gun workers, $BENCH_EVENTS events"
        run_erl bench_http_gun
        ;;
    a)
        say "(a) ours: $BENCH_CALLERS callers running user_send_message, $BENCH_EVENTS events"
        run_erl bench_http_ours
        ;;
    d)
        if [ "$HAVE_CORE_BENCH" = 1 ]; then
            say "(d) Rust core HttpPool alone, $BENCH_EVENTS events"
            timeout "$STEP_TIMEOUT" "${CORE_BIN:-target/release/bench_core}" "$PORT" \
                >"$OUT/bench_core.log" 2>&1 \
                && grep '^RESULT ' "$OUT/bench_core.log" >>"$RESULTS" \
                || { say "bench_core failed (log: $OUT/bench_core.log)"; FAILED="$FAILED bench_core"; }
        else
            say "(d) skipped: bench_core did not build (see $OUT/build.log)"
        fi
        ;;
    *) die "unknown row: $row" ;;
    esac
    # What the sink itself spent per request it served in this row (warm-up
    # included): the share of the machine a client leaves it.
    read -r served1 sink_cpu1 < <(sink_usage)
    if [ "$served1" -gt "$served0" ] && tail -n 1 "$RESULTS" | grep -q "^RESULT row=$row "; then
        sink_cpu=$(awk -v c="$((sink_cpu1 - sink_cpu0))" -v n="$((served1 - served0))" \
                       'BEGIN { printf "%.2f", c / n }')
        sed -i "\$ s/\$/ sink_cpu_us_per_event=$sink_cpu/" "$RESULTS"
    fi
done
done

{
    CPU_MODEL=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
    echo "Medians of $ROUNDS interleaved rounds of \`scripts/bench_http.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores" \
         "($CPU_MODEL), all on 127.0.0.1: $BENCH_EVENTS events, $BENCH_CALLERS callers," \
         "$BENCH_WORKERS workers/connections, sink with $SINK_THREADS thread(s);" \
         "BEAM flags: $ERL_FLAGS; load average before the run: $LOAD_BEFORE."
    echo
    python3 bench/http_table.py "$RESULTS"
} | tee "$OUT/table.md"
if [ "$UPDATE_README" = 1 ] && [ -z "$FAILED" ]; then
    python3 bench/http_table.py --readme README.md "$OUT/table.md"
    say "README.md: Performance section updated"
fi
say "raw results: $OUT"
[ -z "$FAILED" ] || die "rows failed:$FAILED"
