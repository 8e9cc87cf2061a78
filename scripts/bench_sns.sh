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
BENCH=sns
STEP_TIMEOUT=240
. "$(dirname "$0")/../bench/common.sh"

export BENCH_EVENTS=${BENCH_EVENTS:-5000}
BENCH_CALLERS=${BENCH_CALLERS:-100}
BENCH_POOL_SIZE=${BENCH_POOL_SIZE:-100}
ROWS=${ROWS:-"core_single core_batching ours_batching ours_single mim"}
MOTO_PORT=${MOTO_PORT:-4566}
ENDPOINT="http://127.0.0.1:$MOTO_PORT"

require cargo rebar3 erl erlc python3 py:boto3
start_service moto
new_run

# --- build ---------------------------------------------------------------
say "building (logs in $OUT)..."
build_product
build_beams bench/sns/*.erl
# The rows run from a copy of the build: a rebuild while they run (another
# checkout's test run, say) rewrites the NIF library in place, which would
# crash a VM that has it loaded.
SNAPSHOT=$(mktemp -d)
trap 'rm -rf "$SNAPSHOT"' EXIT
cp -rL "$ROOT/_build/test/lib/mongoose_event_pusher" "$SNAPSHOT/"
APP_EBIN="$SNAPSHOT/mongoose_event_pusher/ebin"
SUPPORT_EBIN="$SNAPSHOT/support"
test_host_ebin "$SUPPORT_EBIN"
build_sink --features core --bin bench_sns_core \
    || { tail -40 "$OUT/build.log" >&2; die "cargo build of bench_sns_core failed"; }
cp "$TARGET_DIR/release/bench_sns_core" "$SNAPSHOT/"
# No scheduler busy-waiting, so that the CPU column counts work only.
BEAM_FLAGS=(+sbwt none +sbwtdcpu none +sbwtdio none)

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
        run_beam "$row" bench_sns "$row" "$ENDPOINT" "$TOPIC" "$BENCH_EVENTS" \
            "$BENCH_CALLERS" "$BENCH_POOL_SIZE" ;;
    *) die "unknown row: $row" ;;
    esac
}
for row in $ROWS; do
    say "row $row..."
    if run_row "$row" && collect "$row"; then
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

print_table "One run of \`scripts/bench_sns.sh\`, $(machine)," \
    "all on 127.0.0.1 against moto's server: $BENCH_EVENTS notifications" \
    "per row, $BENCH_CALLERS callers, pool_size $BENCH_POOL_SIZE;" \
    "BEAM flags: $ERL_FLAGS; load average before the run: $LOAD_BEFORE."
say "raw results: $OUT"
[ -z "$FAILED" ] || die "rows failed:$FAILED"
