#!/usr/bin/env python3
"""Turns a benchmark's RESULT lines into its markdown table.

Usage: table.py http|rabbit|sns|mongoosepush|ab RESULTS_FILE
       table.py --readme FILE TABLE_FILE

Each line `RESULT row=<row> key=value ...` of RESULTS_FILE is one run of a
row (bench/erlang/bench_callers.erl's report/2, the bench_sink crate's
binaries, the scripts' own lines); other lines are ignored. The second form
puts TABLE_FILE (the http table with its heading, as scripts/bench_http.sh
keeps it in table.md) between FILE's `<!-- HTTP-TABLE ... -->` and
`<!-- /HTTP-TABLE -->` markers (doc/performance.md).
"""
import re
import statistics
import sys


def runs(path):
    """Every RESULT line, as a dict of strings, in file order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "RESULT":
                out.append(dict(p.split("=", 1) for p in parts[1:] if "=" in p))
    return out


def by_row(path):
    """Each row's runs, rows in first-seen order."""
    rows = {}
    for r in runs(path):
        rows.setdefault(r["row"], []).append(r)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def yes(flag):
    return "yes" if flag else "NO"


# --- http (scripts/bench_http.sh) ---------------------------------------------

HTTP_LABELS = {
    "a": "(a) ours: `user_send_message` hook -> mod_event_pusher_http -> Rust pool",
    "b": "(b) MongooseIM's way: sync POST via 10 gun workers",
    "c": "(c) `wrk -t2 -c10` (load generator)",
    "d": "(d) Rust core `HttpPool` alone",
    "an": "(a) with the disk spool, fsync never",
    "ai": "(a) with the disk spool, fsync every 1 s",
}


def medians(results):
    """A row run in several rounds gets each number's median over them (the
    rounds interleave the rows, so a slow spell of the machine hits every
    row alike)."""
    out = {}
    for key in results[0]:
        values = [r[key] for r in results if key in r]
        if all(isinstance(v, float) for v in values):
            out[key] = statistics.median(values)
        else:
            out[key] = values[0]
    return out


def http_latency(us):
    if us is None:
        return "—"
    if us < 1000:
        return f"{us:.1f} µs"
    return f"{us / 1000:.2f} ms"


def http_ratio(x, y):
    if x is None or y in (None, 0):
        return "n/a"
    return f"{x / y:.2f}x"


def http(path):
    """Rows (a)-(d) that ran; ratios needing a missing row print as "n/a"."""
    rows = {row: medians([{k: num(v) for k, v in r.items() if k != "row"} for r in rs])
            for row, rs in by_row(path).items()}
    b = rows.get("b", {})
    c = rows.get("c", {})
    out = [
        "| row | events/s | vs (b) | vs (c) | caller p50 | caller p99 "
        "| client CPU µs/event | CPU vs (b) | sink CPU µs/event |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(HTTP_LABELS):
        r = rows.get(key)
        if r is None:
            continue
        eps = r.get("events_per_s")
        cpu = r.get("cpu_us_per_event")
        sink_cpu = r.get("sink_cpu_us_per_event")
        out.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                HTTP_LABELS[key],
                f"{eps:,.0f}" if eps is not None else "—",
                http_ratio(eps, b.get("events_per_s")) if key != "b" else "1.00x",
                http_ratio(eps, c.get("events_per_s")) if key != "c" else "1.00x",
                http_latency(r.get("p50_us")),
                http_latency(r.get("p99_us")),
                f"{cpu:.1f}" if cpu is not None else "—",
                http_ratio(cpu, b.get("cpu_us_per_event")) if cpu is not None else "—",
                f"{sink_cpu:.1f}" if sink_cpu is not None else "—",
            )
        )
    print("\n".join(out))
    notes = []
    a = rows.get("a", {})
    for key in ("an", "ai"):
        r = rows.get(key)
        if r is not None and a.get("events_per_s"):
            notes.append(f"- {HTTP_LABELS[key]}: {http_ratio(r.get('events_per_s'), a['events_per_s'])} "
                         f"of (a)'s rate in the same run (goal ≥ 0.80x for fsync never), caller p99 "
                         f"{http_latency(r.get('p99_us'))} (goal < 10 µs)")
    for key in sorted(HTTP_LABELS):
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
    return 0


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
        "[bench/README.md](../bench/README.md).\n\n"
    )
    text = block.sub(lambda m: m.group(1) + body + m.group(2), text, count=1)
    with open(readme, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


# --- rabbit (scripts/bench_rabbit.sh) -------------------------------------------

RABBIT_LABELS = {
    ("ours", "off"): "ours (Rust pool), confirms off",
    ("ours", "on"): "ours (Rust pool), confirms on, pipelined",
    ("mim", "off"): "MongooseIM's way (amqp_client), confirms off",
    ("mim", "on"): "MongooseIM's way (amqp_client), confirms on: wait after each publish",
    ("mim", "pipelined"): "amqp_client, confirms on, pipelined (not MongooseIM: Erlang's best)",
    ("lapin", "off"): "raw lapin publisher, no BEAM, confirms off, each write awaited",
    ("lapin", "on"): "raw lapin publisher, no BEAM, confirms on, up to 1000 in flight",
    ("spoolnever", "on"): "ours with the disk spool, fsync never, confirms on",
    ("spoolnever", "off"): "ours with the disk spool, fsync never, confirms off",
    ("spoolinterval", "on"): "ours with the disk spool, fsync every 1 s, confirms on",
    ("spoolinterval", "off"): "ours with the disk spool, fsync every 1 s, confirms off",
    ("outage", "on"): "outage: broker stopped, events into the spool (fsync never), confirms on",
}


def fnum(row, key):
    v = num(row.get(key))
    return v if isinstance(v, float) else None


def rabbit_rows(path):
    """One row per row name (`<kind>_<confirms>_<workers>`, kind ours | mim |
    lapin), in first-seen order: its median run by events/s (with
    BENCH_REPEAT > 1 each row ran several times)."""
    rows = []
    for same in by_row(path).values():
        same.sort(key=lambda r: fnum(r, "events_per_s") or 0)
        median = dict(same[(len(same) - 1) // 2])
        median["runs"] = str(len(same))
        rows.append(median)
    return rows


def rabbit_label(row):
    kind, confirms, workers = row["row"].rsplit("_", 2)
    text = RABBIT_LABELS.get((kind, confirms), row["row"])
    unit = "connection" if kind != "mim" else "worker"
    plural = "" if workers == "1" else "s"
    return f"{text}, {workers} {unit}{plural}"


def best_mim(rows, confirms):
    """MongooseIM's row with the given confirms setting and the most events/s."""
    cands = [r for r in rows if r["row"].startswith(f"mim_{confirms}_") and fnum(r, "events_per_s")]
    return max(cands, key=lambda r: fnum(r, "events_per_s"), default=None)


def rabbit_ratio(a, b):
    if a is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def rabbit_fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def rabbit(path):
    """Ratios compare with MongooseIM's rows: each row's events/s and CPU per
    event against MongooseIM's way with the same confirms setting (its best
    worker count), and the goals of issue 8 below the table."""
    rows = rabbit_rows(path)
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
        eps = fnum(r, "events_per_s")
        cpu = fnum(r, "cpu_us_per_event")
        note = ""
        if fnum(r, "timed_out"):
            note = f" (timed out: {r.get('in_queue', '?')} in queue)"
        if fnum(r, "dropped"):
            note += f" ({r['dropped']} dropped)"
        print(f"| {rabbit_label(r)}{note} | {rabbit_fmt(eps)} "
              f"| {rabbit_ratio(eps, fnum(base, 'events_per_s') if base else None)} "
              f"| {rabbit_fmt(fnum(r, 'p50_us'), 1)} | {rabbit_fmt(fnum(r, 'p99_us'), 1)} "
              f"| {rabbit_fmt(cpu, 1)} "
              f"| {rabbit_ratio(cpu, fnum(base, 'cpu_us_per_event') if base else None)} |")
    print()
    print("Ratios compare with MongooseIM's row of the same confirms setting that had the most "
          "events/s (\"pipelined\" and \"on\" rows compare with its confirms-on row).")
    for r in rows:
        kind, confirms, _ = r["row"].rsplit("_", 2)
        plain = next((o for o in rows if o["row"] == f"ours_{confirms}_{r['row'].rsplit('_', 1)[1]}"), None)
        if kind.startswith("spool") and plain:
            print(f"- {rabbit_label(r)}: "
                  f"{rabbit_ratio(fnum(r, 'events_per_s'), fnum(plain, 'events_per_s'))} of the "
                  f"same run's rate without the spool (goal ≥ 0.80× for fsync never), "
                  f"caller p99 {rabbit_fmt(fnum(r, 'p99_us'), 1)} µs (goal < 10 µs)")
        if kind == "outage":
            print(f"- outage: {r.get('in_queue', '?')} messages delivered "
                  f"{r.get('deliver_s', '?')} s after the broker returned; node RSS "
                  f"{r.get('rss_before_mb', '?')} MB before, {r.get('rss_submitted_mb', '?')} MB "
                  f"with every event submitted, peak {r.get('rss_peak_mb', '?')} MB (BEAM's own "
                  f"allocators {r.get('beam_before_mb', '?')} → {r.get('beam_submitted_mb', '?')} MB; "
                  f"jobs in memory {r.get('in_memory_jobs', '?')}, spool {r.get('spool_mb', '?')} MB)")
            if r.get("beam_split"):
                print(f"  - BEAM memory with every event submitted (MB; the three largest processes by initial call): {r['beam_split']}")
    ours_on = [r for r in rows if r["row"].startswith("ours_on_")]
    ours_off = [r for r in rows if r["row"].startswith("ours_off_")]
    goals = []
    if ours_on and mim_off:
        r = max(ours_on, key=lambda r: fnum(r, "events_per_s") or 0)
        goals.append(f"- ours with confirms on ÷ MongooseIM with confirms off: "
                     f"{rabbit_ratio(fnum(r, 'events_per_s'), fnum(mim_off, 'events_per_s'))} "
                     f"(goal ≥ 0.90×)")
    if ours_on and mim_on:
        r = max(ours_on, key=lambda r: fnum(r, "events_per_s") or 0)
        goals.append(f"- ours with confirms on ÷ MongooseIM with confirms on: "
                     f"{rabbit_ratio(fnum(r, 'events_per_s'), fnum(mim_on, 'events_per_s'))}")
    if ours_off and mim_off:
        r = max(ours_off, key=lambda r: fnum(r, "events_per_s") or 0)
        goals.append(f"- ours with confirms off ÷ MongooseIM with confirms off: "
                     f"{rabbit_ratio(fnum(r, 'events_per_s'), fnum(mim_off, 'events_per_s'))} "
                     f"events/s (goal ≥ 1×), "
                     f"{rabbit_ratio(fnum(r, 'cpu_us_per_event'), fnum(mim_off, 'cpu_us_per_event'))} "
                     f"CPU per event (goal < 0.5×)")
    if goals:
        print()
        print("\n".join(goals))
    return 0


# --- sns (scripts/bench_sns.sh) -----------------------------------------------

SNS_ROWS = [
    ("ours_batching", "ours: hook → mod_event_pusher_sns, publish_batching = true"),
    ("ours_single", "ours: hook → mod_event_pusher_sns, publish_batching = false"),
    ("mim", "MongooseIM's way: hook casts to pool_size workers, one sync Publish each"),
    ("core_batching", "limit: Rust core alone, tight loop, batching"),
    ("core_single", "limit: Rust core alone, tight loop, one Publish each"),
]
# Which limit row a row is compared with (same kind of requests).
SNS_LIMIT = {"ours_batching": "core_batching", "ours_single": "core_single",
             "mim": "core_single"}


def sns(path):
    """A row's last run (bench_sns.erl, bench_sns_core); ratios against the
    mim row and against the limit row of the same kind of requests."""
    rows = {row: rs[-1] for row, rs in by_row(path).items()}

    def n(row, key):
        return float(row[key])

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "n/a"

    print("| row | publishes/s | requests/s | requests per 100 | caller p50 / p99 (µs) "
          "| CPU µs per event | vs MongooseIM's way | vs the limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    mim = rows.get("mim")
    for name, what in SNS_ROWS:
        r = rows.get(name)
        if r is None:
            continue
        pps = n(r, "publishes_per_s")
        events = n(r, "events")
        per100 = 100 * n(r, "requests") / events if events else 0
        if name == "mim":
            vs_mim = "1.00x"
        else:
            vs_mim = ratio(pps, n(mim, "publishes_per_s")) if mim else "n/a"
        limit = rows.get(SNS_LIMIT.get(name, ""))
        vs_limit = ratio(pps, n(limit, "publishes_per_s")) if limit else "—"
        caller = f"{n(r, 'call_p50_us'):.1f} / {n(r, 'call_p99_us'):.1f}"
        dropped = int(n(r, "dropped"))
        note = f" ({dropped} dropped)" if dropped else ""
        print(f"| **{name}**: {what}{note} | {pps:.0f} | {n(r, 'requests_per_s'):.0f} "
              f"| {per100:.0f} | {caller} | {n(r, 'cpu_us_per_event'):.0f} "
              f"| {vs_mim} | {vs_limit} |")
    return 0


# --- mongoosepush (scripts/bench_mongoosepush.sh) -----------------------------

MONGOOSEPUSH_LABELS = {
    "sync": "sync: caller waits for the answer (as MongooseIM does, over our pool)",
    "ours": "ours: queued in Rust, hook returns at once",
}


def mongoosepush(path):
    """One line per run, in file order."""
    print("| row | notifications/s | caller p50 (µs) | caller p99 (µs) "
          "| BEAM CPU µs/notification | received |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs(path):
        name = MONGOOSEPUSH_LABELS["sync" if r["row"] == "sync" else "ours"]
        print(f"| {name} | {float(r['events_per_s']):.0f} | {float(r['p50_us']):.1f} "
              f"| {float(r['p99_us']):.1f} | {float(r['cpu_us_per_event']):.1f} "
              f"| {r['sink_count']} |")
    return 0


# --- before/after (bench/ab_http.sh) -------------------------------------------

AB_KEYS = [("events_per_s", "events/s", "{:,.0f}"), ("p50_us", "p50 µs", "{:.2f}"),
           ("p99_us", "p99 µs", "{:.2f}"), ("cpu_us_per_event", "CPU µs/ev", "{:.2f}"),
           ("cpu_us_per_event_sched", "schedulers", "{:.2f}"),
           ("cpu_us_per_event_rt", "tokio", "{:.2f}"),
           ("cpu_us_per_event_reporter", "reporter", "{:.2f}")]


def ab(path):
    """Lines `<before|after> <load1> RESULT row=...`: every run, then each
    row's and build's medians."""
    runs_of = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            label, load, _, *kv = line.split()
            kv = dict(p.split("=", 1) for p in kv)
            runs_of.setdefault((kv["row"], label), []).append((float(load), kv))
    keys = AB_KEYS
    print("| row | build | load1 | " + " | ".join(k[1] for k in keys) + " |")
    print("|---|---|---:|" + "---:|" * len(keys))
    for (row, label), rs in sorted(runs_of.items()):
        for load, kv in rs:
            cells = [k[2].format(float(kv[k[0]])) if k[0] in kv else "—" for k in keys]
            print(f"| {row} | {label} | {load:.2f} | " + " | ".join(cells) + " |")
        meds = [k[2].format(statistics.median(float(kv[k[0]]) for _, kv in rs))
                if all(k[0] in kv for _, kv in rs) else "—" for k in keys]
        print(f"| {row} | **{label} median** | | " + " | ".join(meds) + " |")
    return 0


TABLES = {"http": http, "rabbit": rabbit, "sns": sns, "mongoosepush": mongoosepush, "ab": ab}

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--readme":
        sys.exit(update_readme(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] in TABLES:
        sys.exit(TABLES[sys.argv[1]](sys.argv[2]))
    else:
        sys.exit(__doc__)
