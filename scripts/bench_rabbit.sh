#!/usr/bin/env bash
# The RabbitMQ benchmark: one command, the local broker, one markdown table.
# Each row runs in its own BEAM against RabbitMQ on 127.0.0.1:5672 (started by
# scripts/services.sh if it is not running): callers run the user_send_message
# hook and the row's time ends when a queue bound to the exchange holds every
# message (bench/rabbit/README.md says what each row does and measures).
#
# Usage: scripts/bench_rabbit.sh
# Knobs (environment):
#   BENCH_EVENTS=100000 BENCH_CALLERS=100
#   BENCH_REPEAT=1: runs of every row, interleaved; the table shows each row's
#     median run (by events/s), which steadies numbers on a shared machine
#   ROWS="ours:off:10 ours:on:10 spoolnever:on:10 spoolinterval:on:10 mim:off:1 mim:off:10
#         mim:on:1 mim:on:10 mim:pipelined:1"
#     (kind:confirms:workers; kind ours | spoolnever | spoolinterval | mim | outage,
#      confirms off | on | pipelined)
#   outage:on:10 (not in the default ROWS; stops the broker's app: run under
#     flock /tmp/ep-broker.lock): BENCH_OUTAGE_EVENTS=1000000 submitted while
#     RabbitMQ is stopped, RSS and the time to deliver after it returns
#   ERL_FLAGS reaches every BEAM after MongooseIM's own (bench/mongooseim_vm.sh).
# A raw lapin row runs too when `cargo build -p bench_sink --features core
# --bin bench_rabbit_core` builds (an optional binary of the Rust side).
set -euo pipefail
BENCH=rabbit
. "$(dirname "$0")/../bench/common.sh"

export BENCH_EVENTS=${BENCH_EVENTS:-100000}
export BENCH_CALLERS=${BENCH_CALLERS:-100}
BENCH_REPEAT=${BENCH_REPEAT:-1}
ROWS=${ROWS:-"ours:off:10 ours:on:10 spoolnever:on:10 spoolinterval:on:10 mim:off:1 mim:off:10 mim:on:1 mim:on:10 mim:pipelined:1"}

# amqp_client (MongooseIM's rows, the finish line) as Debian's rabbitmq-server
# ships it; jiffy for MongooseIM's rows.
require cargo rebar3 erl erlc python3 rmq:amqp_client erl:jiffy
start_service rabbitmq
new_run

# --- build ---------------------------------------------------------------
say "building (logs in $OUT)..."
build_product
build_beams bench/rabbit/*.erl
test_host_ebin "$SUPPORT_EBIN"
for lib in amqp_client rabbit_common credentials_obfuscation jsx recon; do
    d=$(rmq_ebin "$lib")
    if [ -n "$d" ]; then LIB_PA+=(-pa "$d"); fi
done
HAVE_LAPIN_BENCH=0
if build_sink --features core --bin bench_rabbit_core; then
    HAVE_LAPIN_BENCH=1
fi

run_row() { # kind confirms workers
    local name="$1_$2_$3"
    say "row $name: $BENCH_EVENTS events, $BENCH_CALLERS callers"
    run_beam "$name" bench_rabbit "$1" "$2" "$3" \
        || { tail -30 "$OUT/$name.log" >&2; say "row $name failed (log: $OUT/$name.log)"; return 0; }
    collect "$name" || say "row $name printed no result"
}

for run in $(seq 1 "$BENCH_REPEAT"); do
    [ "$BENCH_REPEAT" = 1 ] || say "--- run $run of $BENCH_REPEAT"
    for row in $ROWS; do
        IFS=: read -r kind confirms workers <<<"$row"
        run_row "$kind" "$confirms" "$workers"
    done
done
if [ "$HAVE_LAPIN_BENCH" = 1 ]; then
    for confirms in off on; do
        say "row lapin_${confirms}_1: raw lapin publisher"
        timeout "$STEP_TIMEOUT" "$TARGET_DIR/release/bench_rabbit_core" "$BENCH_EVENTS" "$confirms" \
            >"$OUT/lapin_$confirms.log" 2>&1 \
            && collect "lapin_$confirms" \
            || say "bench_rabbit_core failed (log: $OUT/lapin_$confirms.log)"
    done
else
    say "raw lapin row skipped: no bench_rabbit_core binary (see $OUT/build.log)"
fi

print_table "One run of \`scripts/bench_rabbit.sh\`, $(machine)," \
    "RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?')" \
    "on 127.0.0.1: $BENCH_EVENTS events from $BENCH_CALLERS callers per row" \
    "(median of $BENCH_REPEAT run(s) per row);" \
    "BEAM flags: $ERL_FLAGS; load average before the run: $LOAD_BEFORE."
say "raw results: $OUT"
