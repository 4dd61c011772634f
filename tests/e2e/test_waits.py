"""Waits that are not lock contention: Queue.get, Event.wait, Future.result.

Per interpreter, with eBPF and with the in-process fallback (--no-bpf),
on tests/workloads/waits.py (the main thread blocks at three marked
lines and times each wait with perf_counter):
- each wait is in the JSON `waits` (kind threading.Condition) at the
  marked line of the workload, not inside queue.py, threading.py or
  concurrent/futures, with the workload's count and within 10% (or 5 ms)
  of its time;
- none of them is in `locks` (nothing was contended);
- the text report lists them under its waits heading, at the marked line.
"""
import sys

import harness as h

W = "waits.py"
MARKS = ("WAIT-QUEUE", "WAIT-EVENT", "WAIT-FUTURE")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        for mode, extra in (("bpf", ()), ("fallback", ("--no-bpf",))):
            one("%s %s waits" % (label, mode), py, extra)
    h.done()


def where(w):
    s = w.get("site") or {}
    return "%s:%s %s" % (s.get("file"), s.get("line"), s.get("function"))


def one(t, py, extra):
    r = h.record(py, W, extra_pyprof_args=extra)
    if not h.check(r.rc == 0 and r.report is not None, t + ": recorded and reported",
                   "rc %s; %s; stderr %s" % (r.rc, r.why, h.tail(r.err))):
        return
    truth = {}
    for line in r.out.splitlines():
        f = line.split()
        if f[:1] == ["wait"] and len(f) == 4:
            truth[f[1]] = float(f[2]), int(f[3])
    if not h.check(set(truth) == set(MARKS), t + ": workload measured itself",
                   "stdout %s" % h.tail(r.out)):
        return
    waits = r.report.get("waits") or []
    locks = r.report.get("locks") or []
    for mark in MARKS:
        file, line, func = h.marker_site(W, mark)
        at = [w for w in waits if (w.get("site") or {}).get("file") == file and
              (w.get("site") or {}).get("line") == line]
        wait, count = truth[mark]
        got = sum(w.get("wait_s") or 0 for w in at)
        n = sum(w.get("contentions") or 0 for w in at)
        h.check(at and all(w.get("kind") == "threading.Condition" for w in at) and
                n == count and abs(got - wait) <= max(0.10 * wait, 0.005),
                "%s: %s is a threading.Condition wait at %s:%d, %d waits, "
                "within 10%% of perf_counter %.3f s" % (t, mark, W, line, count, wait),
                "at the line: %s; all waits %s" % (
                    [(w.get("kind"), w.get("wait_s"), w.get("contentions")) for w in at],
                    [(w.get("kind"), where(w)) for w in waits]))
        h.check(not [x for x in locks if (x.get("site") or {}).get("line") == line and
                     (x.get("site") or {}).get("file") == file],
                "%s: %s is not contention" % (t, mark),
                "locks %s" % [(x.get("kind"), where(x))
                              for x in locks])
    rep = h.pyprof("report", r.trace)
    text = rep.out
    body = text.split("Waits for a notification", 1)
    shown = body[1] if len(body) == 2 else ""
    file, line, func = h.marker_site(W, "WAIT-QUEUE")
    h.check(rep.rc == 0 and ("%s:%d" % (W, line)) in shown,
            t + ": the text report lists the Queue.get wait at its line",
            h.tail(text[-600:]))


if __name__ == "__main__":
    sys.exit(main())
