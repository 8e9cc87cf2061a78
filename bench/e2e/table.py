#!/usr/bin/env python3
"""table.py RESULTS.jsonl: the markdown table of scripts/bench_e2e.sh (median over rounds)."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
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
