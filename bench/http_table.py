#!/usr/bin/env python3
"""Turns the HTTP benchmark's RESULT lines into the markdown table.

Usage: http_table.py RESULTS_FILE
       http_table.py --readme README.md TABLE_FILE
Each line `RESULT row=<a|b|c|d> key=value ...` is one run of a row (several
runs of a row: the median of each number); rows that did not
run are left out, ratios needing a missing row print as "n/a". The second form
puts TABLE_FILE (the first form's output with its heading) between the
README's `<!-- HTTP-TABLE ... -->` and `<!-- /HTTP-TABLE -->` markers (the
http part of its Performance section; the other backends' parts stay).
"""
import re
import statistics
import sys

LABELS = {
    "a": "(a) ours: `user_send_message` hook -> mod_event_pusher_http -> Rust pool",
    "b": "(b) MongooseIM's way: sync POST via 10 gun workers",
    "c": "(c) `wrk -t2 -c10` (load generator)",
    "d": "(d) Rust core `HttpPool` alone",
}
ORDER = ["a", "b", "c", "d"]


def parse(path):
    """Each row's numbers; a row run in several rounds gets each number's
    median over them (the rounds interleave the rows, so a slow spell of the
    machine hits every row alike)."""
    runs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] != "RESULT":
                continue
            kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            runs.setdefault(kv.pop("row"), []).append({k: num(v) for k, v in kv.items()})
    return {row: medians(results) for row, results in runs.items()}


def medians(results):
    out = {}
    for key in results[0]:
        values = [r[key] for r in results if key in r]
        if all(isinstance(v, float) for v in values):
            out[key] = statistics.median(values)
        else:
            out[key] = values[0]
    return out


def num(v):
    try:
        return float(v)
    except ValueError:
        return v


def latency(us):
    if us is None:
        return "—"
    if us < 1000:
        return f"{us:.1f} µs"
    return f"{us / 1000:.2f} ms"


def ratio(x, y):
    if x is None or y in (None, 0):
        return "n/a"
    return f"{x / y:.2f}x"


def main(path):
    rows = parse(path)
    b = rows.get("b", {})
    c = rows.get("c", {})
    out = [
        "| row | events/s | vs (b) | vs (c) | caller p50 | caller p99 "
        "| client CPU µs/event | CPU vs (b) | sink CPU µs/event |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in ORDER:
        r = rows.get(key)
        if r is None:
            continue
        eps = r.get("events_per_s")
        cpu = r.get("cpu_us_per_event")
        sink_cpu = r.get("sink_cpu_us_per_event")
        out.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                LABELS[key],
                f"{eps:,.0f}" if eps is not None else "—",
                ratio(eps, b.get("events_per_s")) if key != "b" else "1.00x",
                ratio(eps, c.get("events_per_s")) if key != "c" else "1.00x",
                latency(r.get("p50_us")),
                latency(r.get("p99_us")),
                f"{cpu:.1f}" if cpu is not None else "—",
                ratio(cpu, b.get("cpu_us_per_event")) if cpu is not None else "—",
                f"{sink_cpu:.1f}" if sink_cpu is not None else "—",
            )
        )
    print("\n".join(out))
    notes = []
    for key in ORDER:
        r = rows.get(key)
        if r is None or "sink_count" not in r or "events" not in r:
            continue
        if r["sink_count"] < r["events"]:
            notes.append(
                f"- WARNING ({key}): the sink counted {r['sink_count']:.0f} "
                f"of {r['events']:.0f} events"
            )
    a = rows.get("a")
    if a and b:
        notes.append(
            "- goals for (a): caller p99 < 10 µs: {}; events/s >= 3x (b): {}; "
            ">= 60% of (c): {}; CPU <= 1/3 of (b): {}".format(
                yes(a["p99_us"] < 10),
                yes(a["events_per_s"] >= 3 * b["events_per_s"]),
                yes(bool(c) and a["events_per_s"] >= 0.6 * c["events_per_s"]),
                yes(a["cpu_us_per_event"] * 3 <= b["cpu_us_per_event"]),
            )
        )
    if notes:
        print()
        print("\n".join(notes))


def yes(flag):
    return "yes" if flag else "NO"


def update_readme(readme, table_file):
    with open(table_file, encoding="utf-8") as f:
        table = f.read().strip()
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    block = re.compile(r"(<!-- HTTP-TABLE[^\n]*-->\n).*?(<!-- /HTTP-TABLE -->)", re.S)
    if not block.search(text):
        sys.exit(f"{readme}: no <!-- HTTP-TABLE --> ... <!-- /HTTP-TABLE --> block")
    body = (
        f"\n{table}\n\n"
        "Reproduce with `scripts/bench_http.sh`; how each row is measured: "
        "[bench/README.md](bench/README.md).\n\n"
    )
    text = block.sub(lambda m: m.group(1) + body + m.group(2), text, count=1)
    with open(readme, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--readme":
        update_readme(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit(__doc__)
