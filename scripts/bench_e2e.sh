#!/usr/bin/env bash
# bench_e2e.sh - the same XMPP load against two MongooseIM releases, one with MongooseIM's
# own event pusher modules (REF) and one with this product installed (PRODUCT), for the
# configs off / http / rabbit / http+rabbit. Per run: messages delivered per second, the
# time until every backend event arrived, and the CPU time per message of each process
# (MongooseIM node, RabbitMQ broker, HTTP sink, AMQP consumer, load generator), from the
# utime+stime deltas of /proc/<pid>/stat over the load; and the node's CPU and context
# switches by thread kind (schedulers, dirty, pollers, our runtime and reporters), from
# /proc/<pid>/task (bench/e2e/threads.py).
#
# usage: scripts/bench_e2e.sh [REF_RELEASE PRODUCT_RELEASE]
#   REF_RELEASE PRODUCT_RELEASE   release directories on this host (bin/mongooseim,
#       etc/mongooseim.toml). Default with MIM_ENV (the real-mongooseim kit's chroot):
#       $MIM_ENV/build/mim/_build/prod/rel/mongooseim and $MIM_ENV/build/mim-product.
#       A release under $MIM_ENV is run inside that chroot. Missing releases: the
#       benchmark is skipped (exit 0).
#
# Environment: CLIENTS (20), MESSAGES per client (2500), CONFIGS ("off http rabbit
#   http+rabbit"), RELEASES ("ref product"), ROUNDS (1; the runs of a round alternate
#   the releases), SINK_PORT (18089), BODY (32 characters), XMPP_DOMAIN (localhost),
#   VM_ARGS (emulator flags added to both releases' etc/vm.args for the run, in pairs,
#   e.g. "+sbwt none +sbwtdcpu none"; vm.args.e2e-orig is put back at the end),
#   PROBE (1: bench/e2e/probe.erl after each load; 0: not), PROBE_MESSAGES (10000),
#   OUT (bench/results/e2e-<time>; not committed).
# The load: CLIENTS raw-XMPP clients (bench/e2e/e2e.py, one asyncio process) log in on
# 127.0.0.1:5222; each sends MESSAGES chat messages to the next one, pipelined (50 per
# write). Delivered/s = CLIENTS*MESSAGES / (time until every recipient got all of them).
# events = time until the sink has one POST per message and the consumer two AMQP
# messages per message (chat_msg_sent + chat_msg_recv). Times are from the first send.
# Each release's etc/mongooseim.toml is rewritten per config (bench/e2e/make_config.py:
# the c2s shaper off plus the backends) from a backup, mongooseim.toml.e2e-orig, which is
# put back at the end. Only one node runs at a time (both have the same name and ports):
# a node already running makes the script stop before anything is changed.
# Needs python3 >= 3.11, root when a release is in the chroot; the HTTP sink is
# target/release/bench_sink (cargo build --release -p bench_sink), else e2e.py's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

if [ $# -ge 2 ]; then
  REF=$1 PROD=$2
elif [ $# -eq 0 ] && [ -n "${MIM_ENV:-}" ]; then
  REF=$MIM_ENV/build/mim/_build/prod/rel/mongooseim PROD=$MIM_ENV/build/mim-product
else
  echo "bench_e2e: skipped: give REF_RELEASE and PRODUCT_RELEASE (or set MIM_ENV)"; exit 0
fi
for r in "$REF" "$PROD"; do
  if [ ! -x "$r/bin/mongooseim" ] || [ ! -f "$r/etc/mongooseim.toml" ]; then
    echo "bench_e2e: skipped: no MongooseIM release at $r"; exit 0
  fi
done
REF=$(cd "$REF" && pwd -P) PROD=$(cd "$PROD" && pwd -P)
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 3.11 or later is needed"

CLIENTS=${CLIENTS:-20} MESSAGES=${MESSAGES:-2500}
CONFIGS=${CONFIGS:-off http rabbit http+rabbit}
RELEASES=${RELEASES:-ref product}
ROUNDS=${ROUNDS:-1}
SINK_PORT=${SINK_PORT:-18089}
DOMAIN=${XMPP_DOMAIN:-localhost}
PASSWORD=secret PREFIX=e2eu EXPREFIX=e2e_
OUT=${OUT:-$ROOT/bench/results/e2e-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
TCK=$(getconf CLK_TCK)
E2E=$ROOT/bench/e2e/e2e.py
THREADS=$ROOT/bench/e2e/threads.py

rel_dir() { case $1 in ref) echo "$REF" ;; product) echo "$PROD" ;; esac; }
# The path of release $1 as its node sees it, and how to run its commands.
in_path() {
  local d; d=$(rel_dir "$1")
  if [ -n "${MIM_ENV:-}" ] && [[ "$d" == "$(realpath "$MIM_ENV")"/* ]]; then
    echo "${d#"$(realpath "$MIM_ENV")"}"
  else
    echo "$d"
  fi
}
relcmd() {  # relcmd ref|product bin/mongooseim ARGS...
  local r=$1 cmd=$2; shift 2
  local p; p=$(in_path "$r")
  if [ "$p" != "$(rel_dir "$r")" ]; then
    chroot "$MIM_ENV" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$p/$cmd" "$@"
  else
    "$p/$cmd" "$@"
  fi
}
node_pid() {  # the beam.smp running release $1
  local p pat; pat="$(in_path "$1")/"
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/exe" 2>/dev/null)" == */beam.smp* ]] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$pat"; then echo "${p#/proc/}"; return; fi
  done
}
broker_pid() {
  local p
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/exe" 2>/dev/null)" == */beam.smp* ]] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- '-s rabbit boot\|rabbitmq_server\|rabbit_prelaunch'; then
      echo "${p#/proc/}"; return
    fi
  done
}
cpu_ticks() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && sed 2>/dev/null 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }' || echo 0; }

node_running() { relcmd "$1" bin/mongooseimctl status >/dev/null 2>&1; }
for r in ref product; do
  if node_running "$r"; then die "a MongooseIM node answers as $r's node: stop it first (nothing was changed)"; fi
done

# --- receivers that live for the whole run ----------------------------------------------
PIDS=()
cleanup() {
  local r d
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for r in ref product; do
    if [ -n "${STARTED:-}" ] && [ "$STARTED" = "$r" ]; then relcmd "$r" bin/mongooseim stop >/dev/null 2>&1 || true; fi
    d=$(rel_dir "$r")
    for f in mongooseim.toml vm.args; do
      if [ -f "$d/etc/$f.e2e-orig" ]; then
        mv -f "$d/etc/$f.e2e-orig" "$d/etc/$f"
        say "restored $d/etc/$f"
      fi
    done
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -x "$ROOT/target/release/bench_sink" ]; then
  "$ROOT/target/release/bench_sink" "$SINK_PORT" 1 >"$OUT/sink.log" 2>&1 &
  SINK_KIND=bench_sink
else
  python3 "$E2E" sink "$SINK_PORT" >"$OUT/sink.log" 2>&1 &
  SINK_KIND=e2e.py
fi
SINK_PID=$!; PIDS+=("$SINK_PID")
for _ in $(seq 50); do grep -q listening "$OUT/sink.log" && break; sleep 0.1; done
grep -q listening "$OUT/sink.log" || die "the sink did not start on 127.0.0.1:$SINK_PORT: $(cat "$OUT/sink.log")"
BROKER_PID=$(broker_pid)
say "sink ($SINK_KIND) pid $SINK_PID on 127.0.0.1:$SINK_PORT; broker pid ${BROKER_PID:-none found}"

for r in $RELEASES; do
  d=$(rel_dir "$r")
  [ -f "$d/etc/mongooseim.toml.e2e-orig" ] || cp -p "$d/etc/mongooseim.toml" "$d/etc/mongooseim.toml.e2e-orig"
  if [ -n "${VM_ARGS:-}" ]; then
    [ -f "$d/etc/vm.args.e2e-orig" ] || cp -p "$d/etc/vm.args" "$d/etc/vm.args.e2e-orig"
    { cat "$d/etc/vm.args.e2e-orig"; printf '%s\n' $VM_ARGS | paste -d' ' - - ; } >"$d/etc/vm.args"
  fi
done

RESULTS=$OUT/results.jsonl
: >"$RESULTS"
declare -A REGISTERED=()

run_one() {  # run_one RELEASE CONFIG ROUND
  local r=$1 cfg=$2 round=$3 d tag
  d=$(rel_dir "$r"); tag="$r-$cfg-$round"
  python3 "$ROOT/bench/e2e/make_config.py" "$d/etc/mongooseim.toml.e2e-orig" "$d/etc/mongooseim.toml" \
    "$cfg" "$SINK_PORT" "$EXPREFIX"
  say "[$tag] starting the node"
  relcmd "$r" bin/mongooseim start || die "[$tag] $r did not start"
  STARTED=$r
  relcmd "$r" bin/mongooseimctl started >/dev/null ||
    die "[$tag] $r's node did not come up: see $d/log/mongooseim.log.1"
  if [ -z "${REGISTERED[$r]:-}" ]; then
    say "[$tag] registering $CLIENTS users"
    for i in $(seq 1 "$CLIENTS"); do
      relcmd "$r" bin/mongooseimctl account registerUser --domain "$DOMAIN" \
        --username "$PREFIX$i" --password "$PASSWORD" </dev/null >/dev/null 2>&1 || true
    done
    REGISTERED[$r]=1
  fi
  local args=() cons_pid="" cnt="$OUT/$tag.amqp"
  if [[ "$cfg" == *http* ]]; then args+=(--http-count "http://127.0.0.1:$SINK_PORT/count"); fi
  if [[ "$cfg" == *rabbit* ]]; then
    python3 "$E2E" amqp "${EXPREFIX}chat_msg" --count-file "$cnt" >"$OUT/$tag.amqp.log" 2>&1 &
    cons_pid=$!; PIDS+=("$cons_pid")
    for _ in $(seq 100); do grep -q bound "$OUT/$tag.amqp.log" && break; sleep 0.1; done
    grep -q bound "$OUT/$tag.amqp.log" || die "[$tag] the AMQP consumer did not bind: $(cat "$OUT/$tag.amqp.log")"
    echo 0 >"$cnt"
    args+=(--amqp-count "$cnt")
  fi
  rm -f "$OUT/ready" "$OUT/go"
  python3 "$E2E" load --clients "$CLIENTS" --messages "$MESSAGES" --prefix "$PREFIX" \
    --password "$PASSWORD" --domain "$DOMAIN" --body "${BODY:-32}" \
    --ready "$OUT/ready" --go "$OUT/go" "${args[@]}" >"$OUT/$tag.load" 2>"$OUT/$tag.load.err" &
  local load_pid=$! node
  for _ in $(seq 600); do [ -e "$OUT/ready" ] && break; kill -0 $load_pid 2>/dev/null || break; sleep 0.1; done
  [ -e "$OUT/ready" ] || die "[$tag] the load generator did not log in: $(tail -3 "$OUT/$tag.load.err")"
  node=$(node_pid "$r")
  local names=(node broker sink amqp load) pids=("$node" "$BROKER_PID" "$SINK_PID" "$cons_pid" "$load_pid")
  local before=() after=() i
  for i in "${!pids[@]}"; do before[i]=$(cpu_ticks "${pids[i]}"); done
  python3 "$THREADS" snap "$node" >"$OUT/$tag.threads0" || true
  say "[$tag] load: $CLIENTS clients x $MESSAGES messages"
  touch "$OUT/go"
  # The load generator ends once the events arrived: take the CPU just before it exits.
  while kill -0 $load_pid 2>/dev/null && ! [ -s "$OUT/$tag.load" ]; do sleep 0.05; done
  for i in "${!pids[@]}"; do after[i]=$(cpu_ticks "${pids[i]}"); done
  python3 "$THREADS" snap "$node" >"$OUT/$tag.threads1" || true
  wait $load_pid || say "[$tag] the load generator reports missing messages or events"
  local cpu="{}"
  cpu=$(for i in "${!pids[@]}"; do
          [ -n "${pids[i]}" ] && echo "${names[i]} $(( (after[i] - before[i]) * 1000000 / TCK ))"
        done | python3 -c 'import json,sys; print(json.dumps({l.split()[0]: int(l.split()[1]) for l in sys.stdin}))')
  local threads="{}"
  threads=$(python3 "$THREADS" diff "$OUT/$tag.threads0" "$OUT/$tag.threads1" 2>/dev/null || echo "{}")
  python3 - "$r" "$cfg" "$round" "$cpu" "$OUT/$tag.load" "$threads" >>"$RESULTS" <<'EOF'
import json, sys
r, cfg, rnd, cpu, f, threads = sys.argv[1:]
line = open(f).read().strip().splitlines()
res = json.loads(line[-1]) if line else {}
cpu = json.loads(cpu)
cpu["load"] = res.get("load_cpu_us", cpu.get("load"))   # its own count: it may be gone before /proc is read
res.update(release=r, config=cfg, round=int(rnd), cpu_us=cpu, node_threads=json.loads(threads))
print(json.dumps(res))
EOF
  tail -1 "$RESULTS" >&2
  if [ -n "$cons_pid" ]; then kill "$cons_pid" 2>/dev/null || true; wait "$cons_pid" 2>/dev/null || true; fi
  if [ "${PROBE:-1}" != 0 ]; then run_probe "$r" "$cfg" "$round"; fi
  relcmd "$r" bin/mongooseim stop >/dev/null
  STARTED=""
  for _ in $(seq 100); do [ -z "$(node_pid "$r")" ] && break; sleep 0.2; done
}

# bench/e2e/probe.erl in the running node (erl_call): the event pusher's cost per message
# without the XMPP traffic; one more line in results.jsonl, with "probe" set.
run_probe() {  # run_probe RELEASE CONFIG ROUND
  local r=$1 cfg=$2 round=$3 d dir erl_call args node cookie out
  d=$(rel_dir "$r")
  erl_call=$(cd "$d" && ls -d erts-*/bin/erl_call 2>/dev/null | head -1)
  [ -n "$erl_call" ] || { say "[$r-$cfg-$round] probe skipped: no erl_call in $d"; return 0; }
  node=$(awk '$1 == "-sname" || $1 == "-name" { print $2 }' "$d/etc/vm.args")
  cookie=$(awk '$1 == "-setcookie" { print $2 }' "$d/etc/vm.args")
  args=(-sname "$node"); grep -q '^-name' "$d/etc/vm.args" && args=(-name "$node")
  mkdir -p "$d/tmp-e2e-probe"; cp "$ROOT/bench/e2e/probe.erl" "$d/tmp-e2e-probe/"
  dir=$(in_path "$r")/tmp-e2e-probe
  out=$(echo "{ok, probe, Beam} = compile:file(\"$dir/probe.erl\", [binary])," \
          "{module, probe} = code:load_binary(probe, \"$dir/probe.beam\", Beam)," \
          "R = probe:run(${PROBE_MESSAGES:-10000}), code:purge(probe), code:delete(probe), R." |
        relcmd "$r" "$erl_call" "${args[@]}" -c "$cookie" -e 2>&1) || true
  rm -rf "$d/tmp-e2e-probe"
  python3 "$ROOT/bench/e2e/table.py" --probe-line "$r" "$cfg" "$round" "$out" >>"$RESULTS" ||
    say "[$r-$cfg-$round] probe failed: $out"
  tail -1 "$RESULTS" >&2
}

for round in $(seq 1 "$ROUNDS"); do
  for cfg in $CONFIGS; do
    for r in $RELEASES; do run_one "$r" "$cfg" "$round"; done
  done
done

python3 "$ROOT/bench/e2e/table.py" "$RESULTS" | tee "$OUT/table.md"
say "raw results in $OUT"
