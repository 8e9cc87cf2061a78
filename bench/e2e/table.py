#!/usr/bin/env python3
"""table.py RESULTS.jsonl: the markdown table of scripts/bench_e2e.sh (median over rounds)."""
import json
import statistics
import sys

if sys.argv[1] == "--probe-line":
    # table.py --probe-line RELEASE CONFIG ROUND ERL_CALL_OUTPUT: probe:run/1's map as a
    # results.jsonl line (exit 1 if the output holds no result).
    import re
    rel, cfg, rnd, out = sys.argv[2:6]
    got = dict(re.findall(r"(\w+) => ([\d.]+|null)", out))
    if "node_cpu_us" not in got:
        sys.exit(1)
    res = {k: (None if v == "null" else float(v)) for k, v in got.items()}
    print(json.dumps(dict(res, probe=True, release=rel, config=cfg, round=int(rnd))))
    sys.exit(0)

allrows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in allrows if not r.get("probe")]
probes = [r for r in allrows if r.get("probe")]
groups = {}
for r in rows:
    groups.setdefault((r["config"], r["release"]), []).append(r)


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    return "–" if v is None else f"{v:,.{nd}f}"


procs = ["node", "broker", "sink", "amqp", "load"]
print("| config | release | runs | msgs | delivered msg/s | all delivered (s) | all events (s) | "
      + " | ".join(f"CPU µs/msg {p}" for p in procs) + " |")
print("|---|---|---|---|---|---|---|" + "---|" * len(procs))
order = {"off": 0, "http": 1, "rabbit": 2, "http+rabbit": 3}
for (cfg, rel), rs in sorted(groups.items(), key=lambda k: (order.get(k[0][0], 9), k[0][1] != "ref")):
    n = rs[0]["messages"]
    miss = [r for r in rs if r.get("delivered", 0) < n
            or any(r.get(f"{b}_events", 0) < r.get(f"{b}_expected", 0) for b in ("http", "rabbit"))]
    ev = med([r.get("events_s") for r in rs]) if cfg != "off" else None
    cells = [cfg, "MongooseIM" if rel == "ref" else "ours", str(len(rs)) + (f" ({len(miss)} incomplete)" if miss else ""),
             f"{n:,}", fmt(med([r["msgs_per_s"] for r in rs]), 0), fmt(med([r["delivered_s"] for r in rs]), 2),
             fmt(ev, 2)]
    for p in procs:
        v = med([r["cpu_us"][p] / n for r in rs if p in r["cpu_us"]])
        cells.append(fmt(v, 1) if v is not None and (p not in ("amqp",) or "rabbit" in cfg) else "–")
    print("| " + " | ".join(cells) + " |")

# Where the node's CPU goes, by thread kind (bench/e2e/threads.py): µs and context
# switches (voluntary + involuntary) per message, medians over rounds.
if any(r.get("node_threads") for r in rows):
    kinds = {}
    for r in rows:
        for k, v in (r.get("node_threads") or {}).items():
            kinds[k] = kinds.get(k, 0) + v["cpu_us"]
    shown = [k for k, _ in sorted(kinds.items(), key=lambda kv: -kv[1])][:7]
    print()
    print("Node CPU µs / context switches per message, by thread kind:")
    print()
    print("| config | release | " + " | ".join(shown) + " | other |")
    print("|---|---|" + "---|" * (len(shown) + 1))
    for (cfg, rel), rs in sorted(groups.items(), key=lambda k: (order.get(k[0][0], 9), k[0][1] != "ref")):
        n = rs[0]["messages"]
        cells = [cfg, "MongooseIM" if rel == "ref" else "ours"]
        for k in shown + [None]:
            def pick(r, field):
                t = r.get("node_threads") or {}
                ks = [k] if k else [x for x in t if x not in shown]
                return sum(t[x][field] for x in ks if x in t)
            us = med([pick(r, "cpu_us") / n for r in rs if r.get("node_threads")])
            cs = med([(pick(r, "vcs") + pick(r, "ivcs")) / n for r in rs if r.get("node_threads")])
            cells.append("–" if us is None else f"{us:.1f} / {cs:.2f}")
        print("| " + " | ".join(cells) + " |")

# bench/e2e/probe.erl: per chat message (an out and an in event through every enabled
# backend, no XMPP traffic), the node's CPU until the pools settled, the caller's wall
# time, and one instrumentation call of the backend's result event.
if probes:
    pg = {}
    for r in probes:
        pg.setdefault((r["config"], r["release"]), []).append(r)
    print()
    print("Probe (bench/e2e/probe.erl, in the node without XMPP traffic), per message:")
    print()
    print("| config | release | runs | node CPU µs | caller µs | instrumentation µs per result |")
    print("|---|---|---|---|---|---|")
    for (cfg, rel), rs in sorted(pg.items(), key=lambda k: (order.get(k[0][0], 9), k[0][1] != "ref")):
        print("| " + " | ".join([cfg, "MongooseIM" if rel == "ref" else "ours", str(len(rs)),
                                 fmt(med([r.get("node_cpu_us") for r in rs])),
                                 fmt(med([r.get("caller_us") for r in rs])),
                                 fmt(med([r.get("instr_us") for r in rs]))]) + " |")
