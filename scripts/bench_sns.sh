#!/usr/bin/env bash
# The SNS benchmark: one command, the local SNS endpoint (moto), one markdown
# table (bench/sns/README.md explains the rows).
#   core_single, core_batching  the Rust core's SnsPool alone, a tight publish
#                               loop: the endpoint's limit, without / with batching
#   ours_batching, ours_single  the user_send_message hook through
#                               mod_event_pusher_sns (publish_batching true / false)
#   mim                         MongooseIM's way: the hook casts to pool_size
#                               workers, one synchronous Publish per notification
# Builds what it runs, talks to 127.0.0.1 only, installs nothing (moto is
# started by scripts/services.sh if it is not running). About 1-2 minutes
# once built with the defaults.
#
# Usage: scripts/bench_sns.sh
# Knobs (environment): BENCH_EVENTS=5000 BENCH_CALLERS=100 BENCH_POOL_SIZE=100
#   ROWS="core_single core_batching ours_batching ours_single mim"
#   MOTO_PORT=4566; ERL_FLAGS reaches every BEAM.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/mongooseim_vm.sh
ROOT=$(pwd)

export BENCH_EVENTS=${BENCH_EVENTS:-5000}
BENCH_CALLERS=${BENCH_CALLERS:-100}
BENCH_POOL_SIZE=${BENCH_POOL_SIZE:-100}
ROWS=${ROWS:-"core_single core_batching ours_batching ours_single mim"}
MOTO_PORT=${MOTO_PORT:-4566}
ENDPOINT="http://127.0.0.1:$MOTO_PORT"
STEP_TIMEOUT=240

say() { printf '%s\n' "$*" >&2; }
die() { say "bench_sns: $*"; exit 1; }

for t in cargo rebar3 erl erlc python3; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool: $t (see scripts/setup.sh)"
done
bash scripts/services.sh start moto || die "moto did not start"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$ROOT/bench/results/sns-$STAMP"
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"

# --- build ---------------------------------------------------------------
say "building (logs in $OUT)..."
rebar3 as test compile >"$OUT/build.log" 2>&1 \
    || { tail -40 "$OUT/build.log" >&2; die "rebar3 as test compile failed"; }
BENCH_EBIN="$ROOT/_build/bench_sns/ebin"
mkdir -p "$BENCH_EBIN"
erlc -Werror +debug_info -I mim_host/include -I erlang/include -o "$BENCH_EBIN" \
    bench/sns/erlang/*.erl bench/erlang/bench_callers.erl
. bench/test_host.sh
# The rows run from a copy of the build: a rebuild while they run (another
# checkout's test run, say) rewrites the NIF library in place, which would
# crash a VM that has it loaded.
SNAPSHOT=$(mktemp -d)
trap 'rm -rf "$SNAPSHOT"' EXIT
cp -rL "$ROOT/_build/test/lib/mongoose_event_pusher" "$SNAPSHOT/"
test_host_ebin "$SNAPSHOT/support" || die "build the test host first"
APP_EBIN="$SNAPSHOT/mongoose_event_pusher/ebin"
SUPPORT_EBIN="$SNAPSHOT/support"
# The core bench is a workspace of its own (the main `cargo test` never builds
# it); the main lock file and target dir give it the dependencies already built.
cp Cargo.lock bench/sns/core/Cargo.lock
CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet \
    --manifest-path bench/sns/core/Cargo.toml 2>>"$OUT/build.log" \
    || { rm -f bench/sns/core/Cargo.lock; tail -40 "$OUT/build.log" >&2; die "cargo build of bench_sns_core failed"; }
rm -f bench/sns/core/Cargo.lock
cp target/release/bench_sns_core "$SNAPSHOT/"

# --- the topic (no subscriber: every row pays only the endpoint's publish) --
TOPIC="bench-sns-$STAMP-$$"
TOPIC_ARN=$(python3 - "$ENDPOINT" "$TOPIC" <<'PY'
import sys, boto3
sns = boto3.client("sns", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bench", aws_secret_access_key="bench")
print(sns.create_topic(Name=sys.argv[2])["TopicArn"])
PY
) || die "cannot create the topic on $ENDPOINT"
say "topic $TOPIC_ARN on $ENDPOINT; $BENCH_EVENTS events per row"

FAILED=""
run_row() {
    local row=$1 log="$OUT/$1.log"
    case $row in
    core_single | core_batching)
        local batching=off
        [ "$row" = core_batching ] && batching=on
        timeout "$STEP_TIMEOUT" "$SNAPSHOT/bench_sns_core" "$ENDPOINT" "$TOPIC_ARN" \
            "$BENCH_EVENTS" "$BENCH_POOL_SIZE" "$batching" "$row" >"$log" 2>&1 ;;
    ours_batching | ours_single | mim)
        # No scheduler busy-waiting, so that the CPU column counts work only.
        ERL_CRASH_DUMP="$OUT/$row.crash.dump" timeout "$STEP_TIMEOUT" erl -noshell +pc unicode \
            +sbwt none +sbwtdcpu none +sbwtdio none \
            -pa "$APP_EBIN" -pa "$SUPPORT_EBIN" -pa "$BENCH_EBIN" \
            -run bench_sns main "$row" "$ENDPOINT" "$TOPIC" "$BENCH_EVENTS" \
            "$BENCH_CALLERS" "$BENCH_POOL_SIZE" >"$log" 2>&1 ;;
    *) die "unknown row: $row" ;;
    esac
}
for row in $ROWS; do
    say "row $row..."
    if run_row "$row" && grep '^RESULT ' "$OUT/$row.log" >>"$RESULTS"; then
        grep '^RESULT ' "$OUT/$row.log" >&2
    else
        tail -20 "$OUT/$row.log" >&2
        say "row $row failed (log: $OUT/$row.log)"
        FAILED="$FAILED $row"
    fi
done

python3 - "$ENDPOINT" "$TOPIC_ARN" <<'PY' || true
import sys, boto3
boto3.client("sns", endpoint_url=sys.argv[1], region_name="us-east-1",
             aws_access_key_id="bench", aws_secret_access_key="bench").delete_topic(TopicArn=sys.argv[2])
PY

{
    CPU_MODEL=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
    echo "One run of \`scripts/bench_sns.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores" \
         "($CPU_MODEL), all on 127.0.0.1 against moto's server: $BENCH_EVENTS notifications" \
         "per row, $BENCH_CALLERS callers, pool_size $BENCH_POOL_SIZE;" \
         "BEAM flags: $ERL_FLAGS; load average before the run: $LOAD_BEFORE."
    echo
    python3 bench/sns/table.py "$RESULTS"
} | tee "$OUT/table.md"
say "raw results: $OUT"
[ -z "$FAILED" ] || die "rows failed:$FAILED"
