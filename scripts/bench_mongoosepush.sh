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
BENCH=mongoosepush
. "$(dirname "$0")/../bench/common.sh"
export BENCH_EVENTS=${BENCH_EVENTS:-20000}
export BENCH_CALLERS=${BENCH_CALLERS:-100}
export BENCH_WORKERS=${BENCH_WORKERS:-100}
SINK_THREADS=${SINK_THREADS:-1}

require cargo rebar3 erl erlc python3
new_run

say "building (logs in $OUT)..."
build_product
build_sink || { tail -40 "$OUT/build.log" >&2; die "cargo build of bench_sink failed"; }
build_beams bench/mongoosepush/*.erl
test_host_ebin "$SUPPORT_EBIN"

start_sink "$OUT/sink.log" "$SINK_THREADS"

say "sync and ours: $BENCH_CALLERS callers, $BENCH_EVENTS notifications each row"
run_beam bench_mongoosepush bench_mongoosepush "$PORT" \
    || { tail -30 "$OUT/bench_mongoosepush.log" >&2
         die "the benchmark failed (log: $OUT/bench_mongoosepush.log)"; }
collect bench_mongoosepush || die "no results (log: $OUT/bench_mongoosepush.log)"

print_table "One run of \`scripts/bench_mongoosepush.sh\`, $(machine)," \
    "127.0.0.1: $BENCH_EVENTS notifications per row, $BENCH_CALLERS callers," \
    "pool workers $BENCH_WORKERS, sink with $SINK_THREADS thread(s); BEAM flags: $ERL_FLAGS;" \
    "load average before: $LOAD_BEFORE."
say "raw results: $OUT"
