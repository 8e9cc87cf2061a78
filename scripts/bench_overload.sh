#!/usr/bin/env bash
# The overload benchmark: the hook's cost per call through the rabbit backend
# with the broker up (normal) and with its app stopped (nearly every event
# dropped, counted and logged by mongoose_event_pusher_drop_log at level
# warning), in one BEAM, and the ratio stopped/normal of the mean and p99 per
# call. Goal: within 2x. Run it under the broker lock:
#
#   flock /tmp/ep-broker.lock scripts/bench_overload.sh
#
# Knobs (environment): BENCH_EVENTS=100000 BENCH_CALLERS=100
set -euo pipefail
BENCH=overload
. "$(dirname "$0")/../bench/common.sh"

export BENCH_EVENTS=${BENCH_EVENTS:-100000}
export BENCH_CALLERS=${BENCH_CALLERS:-100}

require cargo rebar3 erl erlc python3 rmq:amqp_client erl:jiffy
start_service rabbitmq
new_run

say "building (logs in $OUT)..."
build_product
build_beams bench/overload/*.erl
test_host_ebin "$SUPPORT_EBIN"
for lib in amqp_client rabbit_common credentials_obfuscation jsx recon; do
    d=$(rmq_ebin "$lib")
    if [ -n "$d" ]; then LIB_PA+=(-pa "$d"); fi
done
say "rows normal and stopped: $BENCH_EVENTS events each, $BENCH_CALLERS callers"
run_beam overload bench_overload || { tail -30 "$OUT/overload.log" >&2; die "the row failed"; }
echo "One run of \`scripts/bench_overload.sh\`, $(machine), load average before: $LOAD_BEFORE"
grep '^RESULT ' "$OUT/overload.log" | sed 's/^RESULT overload //' | tee "$RESULTS"
say "raw results: $OUT"
