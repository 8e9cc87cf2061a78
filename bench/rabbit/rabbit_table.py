#!/usr/bin/env python3
"""Turns the RESULT lines of scripts/bench_rabbit.sh into a markdown table.

Usage: rabbit_table.py RESULTS_FILE

Each RESULT line: `RESULT row=<kind>_<confirms>_<workers> key=value ...`
(kind ours | mim | lapin). Ratios compare with MongooseIM's rows: each row's
events/s and CPU per event against MongooseIM's way with the same confirms
setting (its best worker count), and the goals of issue 8 below the table.
"""
import sys


def parse(path):
    """One row per row name, in first-seen order: its median run by events/s
    (with BENCH_REPEAT > 1 each row ran several times)."""
    runs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            runs.setdefault(fields["row"], []).append(fields)
    rows = []
    for same in runs.values():
        same.sort(key=lambda r: num(r, "events_per_s") or 0)
        median = dict(same[(len(same) - 1) // 2])
        median["runs"] = str(len(same))
        rows.append(median)
    return rows


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return None


LABELS = {
    ("ours", "off"): "ours (Rust pool), confirms off",
    ("ours", "on"): "ours (Rust pool), confirms on, pipelined",
    ("mim", "off"): "MongooseIM's way (amqp_client), confirms off",
    ("mim", "on"): "MongooseIM's way (amqp_client), confirms on: wait after each publish",
    ("mim", "pipelined"): "amqp_client, confirms on, pipelined (not MongooseIM: Erlang's best)",
    ("lapin", "off"): "raw lapin publisher, no BEAM, confirms off, each write awaited",
    ("lapin", "on"): "raw lapin publisher, no BEAM, confirms on, up to 1000 in flight",
}


def label(row):
    kind, confirms, workers = row["row"].rsplit("_", 2)
    text = LABELS.get((kind, confirms), row["row"])
    unit = "connection" if kind != "mim" else "worker"
    plural = "" if workers == "1" else "s"
    return f"{text}, {workers} {unit}{plural}"


def best_mim(rows, confirms):
    """MongooseIM's row with the given confirms setting and the most events/s."""
    cands = [r for r in rows if r["row"].startswith(f"mim_{confirms}_") and num(r, "events_per_s")]
    return max(cands, key=lambda r: num(r, "events_per_s"), default=None)


def ratio(a, b):
    if a is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def main():
    rows = parse(sys.argv[1])
    if not rows:
        print("(no results)")
        return 1
    mim_off = best_mim(rows, "off")
    mim_on = best_mim(rows, "on")
    print("| Row | events/s | vs MongooseIM, same confirms | caller p50 µs | caller p99 µs "
          "| client CPU µs/event | CPU vs MongooseIM, same confirms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        kind, confirms, _ = r["row"].rsplit("_", 2)
        base = mim_off if confirms == "off" else mim_on
        eps = num(r, "events_per_s")
        cpu = num(r, "cpu_us_per_event")
        note = ""
        if num(r, "timed_out"):
            note = f" (timed out: {r.get('in_queue', '?')} in queue)"
        if num(r, "dropped"):
            note += f" ({r['dropped']} dropped)"
        print(f"| {label(r)}{note} | {fmt(eps)} | {ratio(eps, num(base, 'events_per_s') if base else None)} "
              f"| {fmt(num(r, 'p50_us'), 1)} | {fmt(num(r, 'p99_us'), 1)} | {fmt(cpu, 1)} "
              f"| {ratio(cpu, num(base, 'cpu_us_per_event') if base else None)} |")
    print()
    print("Ratios compare with MongooseIM's row of the same confirms setting that had the most "
          "events/s (\"pipelined\" and \"on\" rows compare with its confirms-on row).")
    ours_on = [r for r in rows if r["row"].startswith("ours_on_")]
    ours_off = [r for r in rows if r["row"].startswith("ours_off_")]
    goals = []
    if ours_on and mim_off:
        r = max(ours_on, key=lambda r: num(r, "events_per_s") or 0)
        goals.append(f"- ours with confirms on ÷ MongooseIM with confirms off: "
                     f"{ratio(num(r, 'events_per_s'), num(mim_off, 'events_per_s'))} "
                     f"(goal ≥ 0.90×)")
    if ours_on and mim_on:
        r = max(ours_on, key=lambda r: num(r, "events_per_s") or 0)
        goals.append(f"- ours with confirms on ÷ MongooseIM with confirms on: "
                     f"{ratio(num(r, 'events_per_s'), num(mim_on, 'events_per_s'))}")
    if ours_off and mim_off:
        r = max(ours_off, key=lambda r: num(r, "events_per_s") or 0)
        goals.append(f"- ours with confirms off ÷ MongooseIM with confirms off: "
                     f"{ratio(num(r, 'events_per_s'), num(mim_off, 'events_per_s'))} events/s "
                     f"(goal ≥ 1×), {ratio(num(r, 'cpu_us_per_event'), num(mim_off, 'cpu_us_per_event'))} "
                     f"CPU per event (goal < 0.5×)")
    if goals:
        print()
        print("\n".join(goals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
