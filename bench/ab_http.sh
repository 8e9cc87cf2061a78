#!/usr/bin/env bash
# Before/after on a busy machine: runs rows of scripts/bench_http.sh for an
# earlier build (a snapshot) and for this build, alternating, and prints each
# run and the medians, so that both sides see the same load.
#
#   bench/ab_http.sh --snapshot DIR   copy this build (the app's beams and NIF,
#                                     bench_core) into DIR
#   bench/ab_http.sh DIR [PAIRS]      PAIRS (3) runs of each, alternating
#
# Knobs: AB_ROWS ("a d"; rows (a) and (d) are the ones a snapshot changes),
# AB_AFTER=DIR2 (compare snapshot DIR with snapshot DIR2 instead of this
# build), and every knob of scripts/bench_http.sh (BENCH_EVENTS...).
set -euo pipefail
BENCH=ab_http
. "$(dirname "$0")/common.sh"

snapshot() {
    local dir=$1
    rebar3 as test compile >/dev/null
    cargo build --release -p bench_sink --features core --bin bench_core --quiet \
        || die "cargo build of bench_core failed"
    rm -rf "$dir/mongoose_event_pusher"
    mkdir -p "$dir/mongoose_event_pusher/priv"
    cp -r "$ROOT/_build/test/lib/mongoose_event_pusher/ebin" "$dir/mongoose_event_pusher/"
    cp "$ROOT/erlang/priv/event_pusher_nif.so" "$dir/mongoose_event_pusher/priv/"
    cp "$TARGET_DIR/release/bench_core" "$dir/bench_core"
    say "snapshot of this build in $dir"
}

case "${1:-}" in
    --snapshot) [ -n "${2:-}" ] || die "usage: $0 --snapshot DIR"; snapshot "$2"; exit 0 ;;
    ""|-*) die "usage: $0 DIR [PAIRS] | $0 --snapshot DIR" ;;
esac
BASE=$(cd "$1" && pwd)
PAIRS=${2:-3}
ROWS=${AB_ROWS:-"a d"}
[ -d "$BASE/mongoose_event_pusher/ebin" ] || die "$BASE holds no snapshot (--snapshot first)"
AFTER=""
if [ -n "${AB_AFTER:-}" ]; then
    AFTER=$(cd "$AB_AFTER" && pwd)
    [ -d "$AFTER/mongoose_event_pusher/ebin" ] || die "$AFTER holds no snapshot"
fi
ALL="$ROOT/bench/results/ab-$(date +%Y%m%d-%H%M%S).txt"
mkdir -p "$(dirname "$ALL")"
: >"$ALL"

run_one() { # variant label; appends "<label> <load1> RESULT ..." lines
    local label=$1 out load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if [ "$label" = before ] || [ -n "$AFTER" ]; then
        local dir=$BASE
        [ "$label" = before ] || dir=$AFTER
        out=$(ROWS="$ROWS" OURS_LIB="$dir" CORE_BIN="$dir/bench_core" \
              scripts/bench_http.sh 2>&1 >/dev/null | sed -n 's/^raw results: //p' || true)
    else
        out=$(ROWS="$ROWS" scripts/bench_http.sh 2>&1 >/dev/null | sed -n 's/^raw results: //p' || true)
    fi
    # A failed row is left out of the medians (its log says why).
    [ -n "$out" ] && [ -s "$out/results.txt" ] || die "a $label run failed (bench/results/http-*)"
    grep -q "row=a" "$out/results.txt" || [[ " $ROWS " != *" a "* ]] \
        || say "warning: row (a) of a $label run failed: $out/bench_http_ours.log"
    sed "s/^/$label $load /" "$out/results.txt" >>"$ALL"
}

for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) = 1 ]; then run_one before; run_one after
    else run_one after; run_one before; fi
    say "pair $i of $PAIRS done"
done

python3 bench/table.py ab "$ALL"
say "all runs: $ALL"
