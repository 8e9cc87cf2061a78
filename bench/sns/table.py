#!/usr/bin/env python3
"""Prints the SNS benchmark's markdown table from its RESULT lines.

Usage: table.py RESULTS_FILE
Each line: `RESULT row=<row> key=value ...` (bench_sns.erl, bench_sns_core).
"""
import sys

ROWS = [
    ("ours_batching", "ours: hook → mod_event_pusher_sns, publish_batching = true"),
    ("ours_single", "ours: hook → mod_event_pusher_sns, publish_batching = false"),
    ("mim", "MongooseIM's way: hook casts to pool_size workers, one sync Publish each"),
    ("core_batching", "limit: Rust core alone, tight loop, batching"),
    ("core_single", "limit: Rust core alone, tight loop, one Publish each"),
]
# Which limit row a row is compared with (same kind of requests).
LIMIT = {"ours_batching": "core_batching", "ours_single": "core_single",
         "mim": "core_single"}


def parse(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
            rows[fields["row"]] = fields
    return rows


def num(row, key):
    return float(row[key])


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def main():
    rows = parse(sys.argv[1])
    print("| row | publishes/s | requests/s | requests per 100 | caller p50 / p99 (µs) "
          "| CPU µs per event | vs MongooseIM's way | vs the limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    mim = rows.get("mim")
    for name, what in ROWS:
        r = rows.get(name)
        if r is None:
            continue
        pps = num(r, "publishes_per_s")
        events = num(r, "events")
        per100 = 100 * num(r, "requests") / events if events else 0
        vs_mim = ratio(pps, num(mim, "publishes_per_s")) if mim and name != "mim" else "1.00x" if name == "mim" else "n/a"
        limit = rows.get(LIMIT.get(name, ""))
        vs_limit = ratio(pps, num(limit, "publishes_per_s")) if limit else "—"
        caller = f"{num(r, 'call_p50_us'):.1f} / {num(r, 'call_p99_us'):.1f}"
        dropped = int(num(r, "dropped"))
        note = f" ({dropped} dropped)" if dropped else ""
        print(f"| **{name}**: {what}{note} | {pps:.0f} | {num(r, 'requests_per_s'):.0f} "
              f"| {per100:.0f} | {caller} | {num(r, 'cpu_us_per_event'):.0f} "
              f"| {vs_mim} | {vs_limit} |")


if __name__ == "__main__":
    main()
