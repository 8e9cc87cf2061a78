# Sourced by the benchmark scripts that post to the local sink (bench/sink).
# start_sink LOG THREADS: starts target/release/bench_sink on a free port of
# 127.0.0.1 with THREADS worker threads, its output in LOG; sets PORT and
# SINK_PID, and stops the sink when the script exits. Needs `die`.
SINK_PID=""
stop_sink() {
    if [ -n "$SINK_PID" ]; then
        kill -TERM "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
}
start_sink() {
    local log=$1 threads=$2
    trap stop_sink EXIT
    target/release/bench_sink 0 "$threads" >"$log" 2>&1 &
    SINK_PID=$!
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
        [ -n "$PORT" ] && break
        kill -0 "$SINK_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] || die "the sink did not start: $(cat "$log")"
}
