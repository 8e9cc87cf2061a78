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
#   ROWS="ours:off:10 ours:on:10 mim:off:1 mim:off:10 mim:on:1 mim:on:10 mim:pipelined:1"
#     (kind:confirms:workers; kind ours | mim, confirms off | on | pipelined)
#   ERL_FLAGS reaches every BEAM after MongooseIM's own (bench/mongooseim_vm.sh).
# A raw lapin row runs too when `cargo build -p bench_sink --features core
# --bin bench_rabbit_core` builds (an optional binary of the Rust side).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/mongooseim_vm.sh
ROOT=$(pwd)

export BENCH_EVENTS=${BENCH_EVENTS:-100000}
export BENCH_CALLERS=${BENCH_CALLERS:-100}
BENCH_REPEAT=${BENCH_REPEAT:-1}
ROWS=${ROWS:-"ours:off:10 ours:on:10 mim:off:1 mim:off:10 mim:on:1 mim:on:10 mim:pipelined:1"}
STEP_TIMEOUT=300

say() { printf '%s\n' "$*" >&2; }
die() { say "bench_rabbit: $*"; exit 1; }

PLUGINS=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins 2>/dev/null | sort | tail -1)
[ -n "$PLUGINS" ] || die "Debian's rabbitmq-server is not installed (it ships amqp_client)"
for t in rebar3 erl erlc python3; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
done
bash scripts/services.sh start rabbitmq || die "RabbitMQ did not start"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$ROOT/bench/results/rabbit-$STAMP"
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"

# --- build ---------------------------------------------------------------
say "building (logs in $OUT)..."
rebar3 as test compile >"$OUT/build.log" 2>&1 \
    || { tail -40 "$OUT/build.log" >&2; die "rebar3 as test compile failed"; }
BENCH_EBIN="$ROOT/_build/bench/rabbit/ebin"
mkdir -p "$BENCH_EBIN"
ERL_LIBS="$PLUGINS" erlc -Werror +debug_info -I mim_host/include -I erlang/include \
    -o "$BENCH_EBIN" bench/rabbit/*.erl bench/erlang/bench_callers.erl bench/erlang/bench_xmpp.erl
. bench/test_host.sh
SUPPORT_EBIN="$ROOT/_build/bench/rabbit/host_ebin"
test_host_ebin "$SUPPORT_EBIN" || die "build the test host first"
RMQ_PATHS=()
for lib in amqp_client rabbit_common credentials_obfuscation jsx recon; do
    d=$(ls -d "$PLUGINS/$lib"-*/ebin 2>/dev/null | sort | tail -1)
    [ -n "$d" ] && RMQ_PATHS+=(-pa "$d")
done
HAVE_LAPIN_BENCH=0
if cargo build --release -p bench_sink --features core --bin bench_rabbit_core --quiet \
        2>>"$OUT/build.log"; then
    HAVE_LAPIN_BENCH=1
fi

run_row() { # kind confirms workers
    local name="$1_$2_$3"
    say "row $name: $BENCH_EVENTS events, $BENCH_CALLERS callers"
    ERL_CRASH_DUMP="$OUT/$name.crash.dump" timeout "$STEP_TIMEOUT" erl -noshell +pc unicode \
        -pa "$ROOT"/_build/test/lib/*/ebin -pa "$SUPPORT_EBIN" "${RMQ_PATHS[@]}" -pa "$BENCH_EBIN" \
        -run bench_rabbit main "$1" "$2" "$3" >"$OUT/$name.log" 2>&1 \
        || { tail -30 "$OUT/$name.log" >&2; say "row $name failed (log: $OUT/$name.log)"; return 0; }
    grep '^RESULT ' "$OUT/$name.log" >>"$RESULTS" || say "row $name printed no result"
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
        timeout "$STEP_TIMEOUT" target/release/bench_rabbit_core "$BENCH_EVENTS" "$confirms" \
            >"$OUT/lapin_$confirms.log" 2>&1 \
            && grep '^RESULT ' "$OUT/lapin_$confirms.log" >>"$RESULTS" \
            || say "bench_rabbit_core failed (log: $OUT/lapin_$confirms.log)"
    done
else
    say "raw lapin row skipped: no bench_rabbit_core binary (see $OUT/build.log)"
fi

{
    CPU_MODEL=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
    echo "One run of \`scripts/bench_rabbit.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores" \
         "($CPU_MODEL), RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?')" \
         "on 127.0.0.1: $BENCH_EVENTS events from $BENCH_CALLERS callers per row" \
         "(median of $BENCH_REPEAT run(s) per row);" \
         "BEAM flags: $ERL_FLAGS; load average before the run: $LOAD_BEFORE."
    echo
    python3 bench/rabbit/rabbit_table.py "$RESULTS"
} | tee "$OUT/table.md"
say "raw results: $OUT"
