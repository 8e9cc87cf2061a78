#!/usr/bin/env bash
# The HTTP benchmark: one command, one local sink, one markdown table.
#   (c) wrk against the sink (the limit of the sink on this machine)
#   (b) MongooseIM's way: 100 callers, synchronous POST through 10 gun workers
#   (a) ours: the user_send_message hook through mod_event_pusher_http
#   (d) the Rust core's HttpPool alone (only when its bench binary builds)
# It builds what it runs (rebar3 test profile, the sink), talks to 127.0.0.1
# only, and installs nothing (a missing tool stops it, naming scripts/setup.sh,
# which installs them all). Runs in about 3 minutes once built.
#
# Usage: scripts/bench_http.sh [--readme]   (--readme also puts the table
# between the HTTP-TABLE markers of doc/performance.md)
# Knobs (environment): BENCH_EVENTS=100000 BENCH_CALLERS=100 BENCH_WORKERS=10
#   SINK_THREADS=1 (the sink's tokio workers; 1 leaves the other core(s) to
#   the client measured), WRK_SECONDS=5, ROWS="c b a an ai d" (an, ai: row (a)
#   with the disk spool, fsync never / every 1 s), ROUNDS=3 (the rows
#   run in turn that many times; the table gives medians); ERL_FLAGS reaches
#   every BEAM after MongooseIM's own (bench/mongooseim_vm.sh); OURS_LIB=DIR runs row (a) with the
#   application in DIR/mongoose_event_pusher/{ebin,priv} instead of this
#   build, and CORE_BIN=FILE runs row (d) with that bench_core binary (copies
#   of an earlier build, to compare before/after: bench/ab_http.sh).
set -euo pipefail
BENCH=http
STEP_TIMEOUT=150
. "$(dirname "$0")/../bench/common.sh"
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
ROWS=${ROWS:-"c b a an ai d"}
ROUNDS=${ROUNDS:-3}

# gun and cowlib (row (b)) as Debian's rabbitmq-server ships them.
require cargo rebar3 erl erlc wrk python3 rmq:gun rmq:cowlib
LIB_PA=(-pa "$(rmq_ebin gun)" -pa "$(rmq_ebin cowlib)")
new_run

# --- build ---------------------------------------------------------------
say "building (logs in $OUT)..."
# Row (a) needs the product (with the NIF) and the test host.
if [[ " $ROWS " == *" a "* ]]; then
    build_product
fi
build_sink || { tail -40 "$OUT/build.log" >&2; die "cargo build of bench_sink failed"; }
build_beams bench/http/*.erl
[[ " $ROWS " != *" a "* ]] || test_host_ebin "$SUPPORT_EBIN"
HAVE_CORE_BENCH=0
if [[ " $ROWS " == *" d "* ]] && build_sink --features core --bin bench_core; then
    HAVE_CORE_BENCH=1
fi

# --- the sink ------------------------------------------------------------
start_sink "$OUT/sink.log" "$SINK_THREADS"
say "sink on 127.0.0.1:$PORT ($SINK_THREADS worker thread(s))"

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
    run_beam "$module" "$module" "$PORT" \
        || { tail -30 "$OUT/$module.log" >&2; say "$module failed (log: $OUT/$module.log)"
             FAILED="$FAILED $module"; return 0; }
    collect "$module" || { say "$module printed no result"; FAILED="$FAILED $module"; }
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
    an|ai)
        fsync=never; [ "$row" = ai ] && fsync=interval
        say "($row) ours with the disk spool (fsync $fsync)"
        BENCH_SPOOL=$fsync run_erl bench_http_ours
        ;;
    d)
        if [ "$HAVE_CORE_BENCH" = 1 ]; then
            say "(d) Rust core HttpPool alone, $BENCH_EVENTS events"
            timeout "$STEP_TIMEOUT" "${CORE_BIN:-$TARGET_DIR/release/bench_core}" "$PORT" \
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

print_table "Medians of $ROUNDS interleaved rounds of \`scripts/bench_http.sh\`, $(machine)," \
    "all on 127.0.0.1: $BENCH_EVENTS events, $BENCH_CALLERS callers," \
    "$BENCH_WORKERS workers/connections, sink with $SINK_THREADS thread(s);" \
    "BEAM flags: $ERL_FLAGS; load average before the run: $LOAD_BEFORE."
if [ "$UPDATE_README" = 1 ] && [ -z "$FAILED" ]; then
    python3 bench/table.py --readme doc/performance.md "$OUT/table.md"
    say "doc/performance.md: the HTTP-TABLE block updated"
fi
say "raw results: $OUT"
[ -z "$FAILED" ] || die "rows failed:$FAILED"
