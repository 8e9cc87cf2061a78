# The set-up every scripts/bench_*.sh shares; sourced after `set -euo
# pipefail` with BENCH set to the benchmark's name (http, rabbit, sns,
# mongoosepush). It moves to the repository root and sets ROOT, TARGET_DIR
# (cargo's, CARGO_TARGET_DIR honoured) and ERL_FLAGS (MongooseIM's emulator
# flags first: bench/mongooseim_vm.sh), and defines:
#   say, die                 messages on stderr; die exits 1
#   require TOOL...          stops, naming what is missing and scripts/setup.sh,
#                            unless every TOOL is there: a command, rmq:LIB (an
#                            Erlang library of Debian's rabbitmq-server),
#                            erl:APP (an Erlang application on erl's path) or
#                            py:MODULE (a Python module)
#   rmq_ebin LIB             the ebin of LIB in RabbitMQ's plugins dir
#   start_service NAME       scripts/services.sh start NAME, or die
#   new_run                  LOAD_BEFORE, STAMP, OUT=bench/results/$BENCH-$STAMP,
#                            RESULTS=$OUT/results.txt (empty)
#   build_product            rebar3 as test compile (log: $OUT/build.log), or die
#   build_sink ARGS...       cargo build --release -p bench_sink ARGS (log appended)
#   build_beams FILE...      compiles bench/erlang/*.erl and FILE... into BENCH_EBIN
#   test_host_ebin DIR       the test host's beams (mim_host/, test/support) in DIR
#   run_beam NAME MODULE ARGS...
#                            erl -run MODULE main ARGS in $OUT/NAME.log, bounded
#                            by STEP_TIMEOUT; code path: APP_EBIN (default this
#                            build), SUPPORT_EBIN, LIB_PA, BENCH_EBIN, OURS_PA;
#                            BEAM_FLAGS before them
#   collect NAME             appends NAME's RESULT lines to RESULTS (false if none)
#   machine                  "<date>, <n> cores (<CPU model>)" for a table heading
#   print_table HEADING...   the heading, then bench/table.py $BENCH's table, on
#                            stdout and in $OUT/table.md
#   start_sink LOG THREADS, sink_get PATH, sink_usage    the bench sink (bench/sink)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
. bench/mongooseim_vm.sh
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH_EBIN="$ROOT/_build/bench/$BENCH/ebin"
SUPPORT_EBIN="$ROOT/_build/bench/$BENCH/host_ebin"
APP_EBIN=""
LIB_PA=()
OURS_PA=()
BEAM_FLAGS=()
STEP_TIMEOUT=${STEP_TIMEOUT:-300}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench_$BENCH: $*"; exit 1; }

rmq_ebin() {
    ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/"$1"-*/ebin 2>/dev/null | sort | tail -1
}

require() {
    local missing="" t
    for t in "$@"; do
        case $t in
        rmq:*) [ -n "$(rmq_ebin "${t#rmq:}")" ] || missing+="${t#rmq:} (rabbitmq-server) " ;;
        erl:*) erl -noshell -eval "halt(case code:lib_dir(${t#erl:}) of {error, _} -> 1; _ -> 0 end)" \
                   >/dev/null 2>&1 || missing+="${t#erl:} (erlang-${t#erl:}) " ;;
        py:*) python3 -c "import ${t#py:}" >/dev/null 2>&1 || missing+="${t#py:} (python3, moto[server]) " ;;
        *) command -v "$t" >/dev/null 2>&1 || missing+="$t " ;;
        esac
    done
    [ -z "$missing" ] && return 0
    case " $missing" in
    *" cargo "*) die "missing tools: ${missing% }: install Rust (rustup), then run scripts/setup.sh" ;;
    *) die "missing tools: ${missing% }: run scripts/setup.sh (it installs them)" ;;
    esac
}

start_service() {
    bash scripts/services.sh start "$1" || die "$1 did not start"
}

new_run() {
    # Other work on the machine skews every row; the table says how busy it was.
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    STAMP=$(date +%Y%m%d-%H%M%S)
    OUT="$ROOT/bench/results/$BENCH-$STAMP"
    mkdir -p "$OUT"
    RESULTS="$OUT/results.txt"
    : >"$RESULTS"
}

build_product() {
    rebar3 as test compile >"$OUT/build.log" 2>&1 \
        || { tail -40 "$OUT/build.log" >&2; die "rebar3 as test compile failed"; }
}

build_sink() {
    cargo build --release -p bench_sink --quiet "$@" 2>>"$OUT/build.log"
}

build_beams() {
    rm -rf "$BENCH_EBIN" && mkdir -p "$BENCH_EBIN"
    # RabbitMQ's plugins dir: amqp_client's header for the rabbit rows.
    ERL_LIBS="$(dirname "$(dirname "$(rmq_ebin amqp_client)")")" \
        erlc -Werror +debug_info -I mim_host/include -I erlang/include -o "$BENCH_EBIN" \
        bench/erlang/*.erl "$@" || die "the bench modules did not compile"
}

# A copy, so that a rebuild while a bench runs (another checkout's test run,
# say) does not change the code under it.
test_host_ebin() {
    local dest=$1 tree dir
    rm -rf "$dest" && mkdir -p "$dest"
    for tree in mim_host test; do
        dir="$ROOT/_build/test/extras/$tree"
        [ -d "$dir" ] || die "the test host's beams are not in $dir (run: rebar3 as test compile)"
        find "$dir" -name '*.beam' -exec cp -f {} "$dest/" \;
    done
    [ -f "$dest/ejabberd_sup.beam" ] && [ -f "$dest/ep_wait.beam" ] \
        || die "the test host's beams are incomplete in $dest"
}

run_beam() {
    local name=$1 module=$2
    shift 2
    local app=(-pa "$ROOT"/_build/test/lib/*/ebin)
    [ -z "$APP_EBIN" ] || app=(-pa "$APP_EBIN")
    ERL_CRASH_DUMP="$OUT/$name.crash.dump" timeout "$STEP_TIMEOUT" erl -noshell +pc unicode \
        "${BEAM_FLAGS[@]}" "${app[@]}" -pa "$SUPPORT_EBIN" "${LIB_PA[@]}" -pa "$BENCH_EBIN" \
        "${OURS_PA[@]}" -run "$module" main "$@" >"$OUT/$name.log" 2>&1
}

collect() {
    grep '^RESULT ' "$OUT/$1.log" >>"$RESULTS"
}

machine() {
    local cpu
    cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($cpu)"
}

print_table() {
    { echo "$*"; echo; python3 bench/table.py "$BENCH" "$RESULTS"; } | tee "$OUT/table.md"
}

# --- the bench sink (bench/sink) -------------------------------------------
# start_sink LOG THREADS: starts bench_sink on a free port of 127.0.0.1 with
# THREADS worker threads, its output in LOG; sets PORT and SINK_PID, and
# stops the sink when the script exits.
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
    # SINK_SCHED=batch: the sink (which a real deployment has on another
    # machine) runs SCHED_BATCH, so its wake-ups do not preempt the BEAM's
    # schedulers mid-call (see doc/performance.md on the caller's p99).
    if [ "${SINK_SCHED:-}" = batch ]; then
        chrt --batch 0 "$TARGET_DIR/release/bench_sink" 0 "$threads" >"$log" 2>&1 &
    else
        "$TARGET_DIR/release/bench_sink" 0 "$threads" >"$log" 2>&1 &
    fi
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

# sink_get PATH: the body of the sink's answer to GET PATH (/count, /reset:
# "<requests> <bytes>"; /total: "<requests since start>").
sink_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET %s HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n' "$1" >&3
    tail -n 1 <&3
    exec 3<&-
}

# sink_usage: "<requests since start> <CPU µs since start>" of the sink.
sink_usage() {
    local total ticks tck
    total=$(sink_get /total)
    # utime + stime: fields 14 and 15 of proc(5), counted after the ')'.
    ticks=$(sed 's/.*) //' "/proc/$SINK_PID/stat" | awk '{ print $12 + $13 }')
    tck=$(getconf CLK_TCK)
    echo "$total $((ticks * 1000000 / tck))"
}
