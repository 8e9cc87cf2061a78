# Sourced by the benchmark scripts that post to the local sink (bench/sink).
# start_sink LOG THREADS: starts target/release/bench_sink on a free port of
# 127.0.0.1 with THREADS worker threads, its output in LOG; sets PORT and
# SINK_PID, and stops the sink when the script exits. Needs `die`.
# sink_usage: prints "<requests since start> <CPU µs since start>" of the sink.
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

sink_usage() {
    local total ticks tck
    exec 4<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET /total HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n' >&4
    total=$(tail -n 1 <&4)
    exec 4<&-
    # utime + stime: fields 14 and 15 of proc(5), counted after the ')'.
    ticks=$(sed 's/.*) //' "/proc/$SINK_PID/stat" | awk '{ print $12 + $13 }')
    tck=$(getconf CLK_TCK)
    echo "$total $((ticks * 1000000 / tck))"
}
