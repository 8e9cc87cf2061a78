#!/usr/bin/env bash
# The MongoosePush benchmark (not a test): notifications/s and the caller's
# cost per notification through mod_push_service_mongoosepush, with the
# caller waiting for the answer (MongooseIM's synchronous POST) and with our
# queued path, against one local bench sink standing in for MongoosePush.
# Builds what it runs, talks to 127.0.0.1 only, installs nothing.
#
# Usage: scripts/bench_mongoosepush.sh
# Knobs (environment): BENCH_EVENTS=20000 BENCH_CALLERS=100 BENCH_WORKERS=100
#   SINK_THREADS=1
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/mongooseim_vm.sh
ROOT=$(pwd)
export BENCH_EVENTS=${BENCH_EVENTS:-20000}
export BENCH_CALLERS=${BENCH_CALLERS:-100}
export BENCH_WORKERS=${BENCH_WORKERS:-100}
SINK_THREADS=${SINK_THREADS:-1}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench_mongoosepush: $*"; exit 1; }
for t in cargo rebar3 erl erlc; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OUT="$ROOT/bench/results/mongoosepush-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

say "building (logs in $OUT)..."
rebar3 as test compile >"$OUT/build.log" 2>&1 \
    || { tail -40 "$OUT/build.log" >&2; die "rebar3 as test compile failed"; }
cargo build --release -p bench_sink --quiet 2>>"$OUT/build.log" \
    || { tail -40 "$OUT/build.log" >&2; die "cargo build of bench_sink failed"; }
BENCH_EBIN="$ROOT/_build/bench/mongoosepush/ebin"
mkdir -p "$BENCH_EBIN"
erlc -Werror +debug_info -I mim_host/include -I erlang/include -o "$BENCH_EBIN" \
    bench/erlang/bench_http_lib.erl bench/erlang/bench_callers.erl bench/mongoosepush/*.erl
. bench/test_host.sh
SUPPORT_EBIN="$ROOT/_build/bench/mongoosepush/host_ebin"
test_host_ebin "$SUPPORT_EBIN" || die "build the test host first"

. bench/sink.sh
start_sink "$OUT/sink.log" "$SINK_THREADS"

say "sync and ours: $BENCH_CALLERS callers, $BENCH_EVENTS notifications each row"
ERL_CRASH_DUMP="$OUT/erl_crash.dump" timeout 300 erl -noshell +pc unicode \
    -pa "$ROOT"/_build/test/lib/*/ebin -pa "$SUPPORT_EBIN" -pa "$BENCH_EBIN" \
    -run bench_mongoosepush main "$PORT" >"$OUT/bench.log" 2>&1 \
    || { tail -30 "$OUT/bench.log" >&2; die "the benchmark failed (log: $OUT/bench.log)"; }
grep '^RESULT ' "$OUT/bench.log" >"$OUT/results.txt" || die "no results (log: $OUT/bench.log)"

{
    echo "One run of \`scripts/bench_mongoosepush.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
         "127.0.0.1: $BENCH_EVENTS notifications per row, $BENCH_CALLERS callers," \
         "pool workers $BENCH_WORKERS, sink with $SINK_THREADS thread(s); BEAM flags: $ERL_FLAGS; load average before: $LOAD_BEFORE."
    echo
    echo "| row | notifications/s | caller p50 (µs) | caller p99 (µs) | BEAM CPU µs/notification | received |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk '{ delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           name = (v["row"] == "sync") ? "sync: caller waits for the answer (as MongooseIM does, over our pool)" \
                                       : "ours: queued in Rust, hook returns at once"
           printf "| %s | %.0f | %.1f | %.1f | %.1f | %s |\n", name, v["events_per_s"],
                  v["p50_us"], v["p99_us"], v["cpu_us_per_event"], v["sink_count"] }' "$OUT/results.txt"
} | tee "$OUT/table.md"
say "raw results: $OUT"
