"""A lost or stalled collector never harms the target (README: "A lost
collector").

allocrate.py allocates in a loop and writes its allocation rate every
0.5 s, per second of wall time and per second of its own CPU time. It
runs under `pyprof record --ring-size 65536` (the ring fills in
milliseconds) and, at the same time, plain: the two rates over the same
seconds give the ratio. The CPU rate is the one compared with the
thresholds (what each allocation costs the target; on this shared
machine two plain runs side by side differ by 20% in wall rate); the
wall rate must stay above half the threshold, which a stall (a target
waiting for a collector that never drains) does not. Then pyprof is
- killed with SIGKILL and reaped: after it, the target's rate is >= 0.7
  of plain (the shim stopped recording, hooks pass straight through;
  recording every allocation, it runs at about 0.54);
- killed and left a zombie (not reaped): the same;
- stopped with SIGSTOP for 6 s, then continued: while it is stopped the
  rate is >= 0.5 of plain (one bounded wait, then drops without
  waiting); after SIGCONT pyprof ends normally (exit 0), and the report
  gives the dropped count and a window covering the stop, in JSON
  (events.dropped_windows, whose counts add up to the shim's drops:
  events.dropped_by_source.shim, or events.dropped without it) and in
  text.
The ring logic is the same for every interpreter, so one runs this (the
first present: the rates need steady seconds, not many runs).
"""
import json
import os
import signal
import statistics
import subprocess
import time

import harness as h

RUN_S = 12.0      # the workload's run
EVENT_AT = 3.0    # seconds after start: kill or stop
STOP_S = 6.0
SETTLE_S = 1.5    # the bounded wait (1 s) and the kill's own exit
RING = "65536"


def rates(path):
    """[(t, wall_rate, cpu_rate)] from allocrate.py's file"""
    out = []
    try:
        with open(path) as f:
            for line in f:
                t, w, c = line.split()
                out.append((float(t), float(w), float(c)))
    except (OSError, ValueError):
        pass
    return out


def ratio(rec, plain, t0, t1, col):
    """median rate of rec over median of plain, samples inside [t0, t1]"""
    a = [s[col] for s in rec if t0 <= s[0] - 0.5 and s[0] <= t1]
    b = [s[col] for s in plain if t0 <= s[0] - 0.5 and s[0] <= t1]
    if len(a) < 3 or len(b) < 3:
        return 0.0, "too few samples (%d, %d) in [%.1f, %.1f]" % (len(a), len(b), t0, t1)
    ma, mb = statistics.median(a), statistics.median(b)
    return ma / mb, "%.2f: medians %.0f/s vs plain %.0f/s" % (ma / mb, ma, mb)


def scenario(label, py, mode):
    t = "%s collector %s" % (label, mode)
    rec_f, plain_f = h.tmpfile("rec-%s.txt" % mode), h.tmpfile("plain-%s.txt" % mode)
    trace = h.tmpfile("lost-%s.pyprof" % mode)
    wl = h.workload_path("allocrate.py")
    devnull = subprocess.DEVNULL
    plain = subprocess.Popen([py, wl, plain_f, str(RUN_S)], stdout=devnull, stderr=devnull)
    start = time.monotonic()
    p = subprocess.Popen([str(h.PYPROF), "record", "-o", trace, "--ring-size", RING, "--",
                          py, wl, rec_f, str(RUN_S)], stdout=devnull,
                         stderr=subprocess.PIPE)
    # the target's own start (eBPF attach) can take a while on a busy machine
    while not rates(rec_f) and time.monotonic() - start < 20:
        time.sleep(0.05)
    time.sleep(EVENT_AT)
    ev = time.monotonic()
    rc = None
    if mode in ("killed", "zombie"):
        p.kill()
        if mode == "killed":
            p.wait()
        end = ev + 5.0
        time.sleep(max(0.0, end - time.monotonic()))
        # recording every allocation the target alone needs about 1.85x
        # plain's CPU (README, overhead: 0.54 of plain's rate), passing
        # straight through about 1.0; two plain runs side by side on a
        # loaded machine differ by up to 25%
        lo, floor = ev + SETTLE_S, 0.7
    else:
        p.send_signal(signal.SIGSTOP)
        time.sleep(STOP_S)
        p.send_signal(signal.SIGCONT)
        end = time.monotonic()
        lo, floor = ev + SETTLE_S, 0.5
    # the zombie is reaped only now
    try:
        _, err = p.communicate(timeout=h.CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    rc = p.returncode
    plain.wait()
    what = "after the loss" if floor > 0.5 else "while it is stopped"
    rec_r, plain_r = rates(rec_f), rates(plain_f)
    cpu, cwhy = ratio(rec_r, plain_r, lo, end, 2)
    wall, wwhy = ratio(rec_r, plain_r, lo, end, 1)
    h.check(cpu >= floor, "%s: allocations per CPU second %s are >= %.1f of plain" % (
        t, what, floor), cwhy)
    h.check(wall >= floor / 2, "%s: no stall %s (wall-clock rate >= %.2f of plain)" % (
        t, what, floor / 2), wwhy)
    if os.environ.get("PYPROF_E2E_VERBOSE"):
        print("# %s: cpu %s; wall %s" % (t, cwhy, wwhy))
    if mode != "stopped":
        return
    err = err.decode(errors="replace")
    h.check(rc == 0, t + ": pyprof ends normally after SIGCONT (exit 0)",
            "rc %s; stderr %s" % (rc, h.tail(err)))
    rep = h.pyprof("report", trace, "--format", "json")
    try:
        ev_json = json.loads(rep.stdout)["events"]
    except (ValueError, KeyError) as e:
        h.check(False, t + ": report", "rc %s, %s; %s" % (rep.rc, e, h.tail(rep.err)))
        return
    wins = ev_json.get("dropped_windows", [])
    stop_rel, cont_rel = ev - start, end - start
    cover = [w for w in wins if w["from_s"] <= stop_rel + 0.5 and w["to_s"] >= cont_rel - 0.5]
    # the windows are the shim's drops (the ring's counter in the ticks)
    shim = ev_json.get("dropped_by_source", {}).get("shim", ev_json["dropped"])
    h.check(shim > 0 and sum(w["dropped"] for w in wins) == shim and cover,
            t + ": the report gives the dropped count and a window covering the stop",
            "dropped %s, windows %s; stopped %.1f-%.1f s" % (
                ev_json["dropped"], wins, stop_rel, cont_rel))
    txt = h.pyprof("report", trace)
    h.check(txt.rc == 0 and "events dropped between" in txt.out,
            t + ": the text report says when events were dropped",
            "rc %s: %s" % (txt.rc, h.tail(txt.out)))


def main():
    h.require_pyprof()
    pys = h.interpreters()
    if pys:
        label, py = pys[0]
        for mode in ("killed", "zombie", "stopped"):
            scenario(label, py, mode)
    h.done()


if __name__ == "__main__":
    main()
