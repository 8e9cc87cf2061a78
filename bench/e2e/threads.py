#!/usr/bin/env python3
"""threads.py: where a process's CPU and context switches go, by thread kind.

  threads.py snap PID          one JSON line: per thread, its name, CPU ticks and
                               voluntary/involuntary context switches (/proc/PID/task)
  threads.py diff BEFORE AFTER one JSON object: per thread kind, the CPU (µs) and the
                               context switches between two snapshots (JSON lines)

Kinds are the BEAM's threads (schedulers, dirty CPU and IO schedulers, aux, poller,
the rest) and ours (the tokio runtime `event_pusher_rt`, the pools' reporters, the
spool writers, lapin's I/O threads). A thread that exited between the snapshots
counts from its last snapshot only, so a snapshot is taken right before and right
after the load.
"""
import json
import os
import re
import sys

TCK = os.sysconf("SC_CLK_TCK")


def snap(pid):
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/stat") as f:
                stat = f.read()
            with open(f"{base}/{tid}/status") as f:
                status = dict(l.split(":", 1) for l in f if ":" in l)
        except OSError:
            continue  # the thread exited while we read
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = {
            "name": name,
            "ticks": int(fields[11]) + int(fields[12]),
            "vcs": int(status["voluntary_ctxt_switches"]),
            "ivcs": int(status["nonvoluntary_ctxt_switches"]),
        }
    return out


# The BEAM's thread names (OTP 26+: "erts_sched_1"; OTP 25: "1_scheduler").
BEAM_KINDS = [(r"erts_sched_\d+|\d+_scheduler", "schedulers"),
              (r"erts_dcpus_\d+|\d+_dirty_cpu_s\w*", "dirty_cpu"),
              (r"erts_dios_\d+|\d+_dirty_io_s\w*", "dirty_io"),
              (r"erts_aux_\d+|aux", "aux"),
              (r"erts_poll_\d+|\d+_poller", "poller")]


def kind(name):
    for pattern, k in BEAM_KINDS:
        if re.fullmatch(pattern, name):
            return k
    if name.startswith("event_pusher_rt"):
        return "ours: runtime"
    if name.startswith("event_pusher_sp"):
        return "ours: spool"
    if name.startswith("event_pusher"):
        return "ours: reporters"
    if name.startswith("lapin"):
        return "ours: lapin I/O"
    return "beam_other"


def diff(before, after):
    kinds = {}
    for tid, a in after.items():
        b = before.get(tid, {"ticks": 0, "vcs": 0, "ivcs": 0})
        k = kinds.setdefault(kind(a["name"]), {"threads": 0, "cpu_us": 0, "vcs": 0, "ivcs": 0})
        k["threads"] += 1
        k["cpu_us"] += (a["ticks"] - b["ticks"]) * 1_000_000 // TCK
        k["vcs"] += a["vcs"] - b["vcs"]
        k["ivcs"] += a["ivcs"] - b["ivcs"]
    return kinds


def main(argv):
    if len(argv) == 3 and argv[1] == "snap":
        print(json.dumps(snap(argv[2])))
    elif len(argv) == 4 and argv[1] == "diff":
        with open(argv[2]) as b, open(argv[3]) as a:
            print(json.dumps(diff(json.load(b), json.load(a))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
