"""Lock contention from the in-process fallback (`pyprof record --no-bpf`).

Per interpreter, on tests/workloads/fallback_lock.py (a waiter blocks 40
times on a threading.Lock another thread holds for 20 ms at a time, at
the line marked CONTENDED-LOCK, and times each acquire with perf_counter):
- the top contended lock is threading.Lock at the marked file:line, in
  the waiter function, with 40 contentions;
- its wait time is within 10% of the workload's own measurement;
- the thread joins show as waits (thread.join), not as contention;
- the report's stalls come from the shim (gil.source "shim").
threading.Lock blocks on the lock's own semaphore in 3.9-3.13 (Python/
thread_pthread.h; 3.13's PyMutex is used for other things, whose waits
park on the waiting thread's semaphore, Python/parking_lot.c, and are
seen the same way, e.g. 3.13's join).
"""
import sys

import harness as h

W = "fallback_lock.py"
MARK = "CONTENDED-LOCK"


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s fallback locks" % label
    r = h.record(py, W, extra_pyprof_args=("--no-bpf",))
    ok = h.check(r.rc == 0 and r.report is not None, t + ": recorded and reported",
                 "rc %s; %s; stderr %s" % (r.rc, r.why, h.tail(r.err)))
    if not ok:
        return
    rep = r.report
    h.check((rep.get("gil") or {}).get("source") == "shim",
            t + ": report says source shim",
            "gil.source = %r" % (rep.get("gil") or {}).get("source"))
    truth = None
    for line in r.out.splitlines():
        f = line.split()
        if f[:1] == ["lock"] and len(f) == 3:
            truth = float(f[1]), int(f[2])
    if not h.check(truth is not None, t + ": workload measured itself",
                   "stdout %s" % h.tail(r.out)):
        return
    wait, count = truth
    file, line, func = h.marker_site(W, MARK)
    locks = rep.get("locks") or []
    top = locks[0] if locks else {}
    site = top.get("site") or {}
    h.check(site.get("file") == file and site.get("line") == line and
            site.get("function") == func and top.get("kind") == "threading.Lock",
            "%s: top contended lock is threading.Lock at %s:%d in %s" % (
                t, W, line, func),
            "top %s" % top)
    got = top.get("wait_s") or 0.0
    h.check(wait > 0 and abs(got - wait) <= 0.10 * wait,
            "%s: wait %.4f s within 10%% of perf_counter %.4f s" % (t, got, wait),
            "off by %.1f%%" % (100 * abs(got - wait) / wait if wait else 0))
    h.check(top.get("contentions") == count,
            "%s: %d contentions" % (t, count), "got %s" % top.get("contentions"))
    joins = [w for w in rep.get("waits") or [] if w.get("kind") == "thread.join"]
    h.check(joins and not [x for x in locks if x.get("kind") == "thread.join"],
            t + ": thread joins are waits, not contention",
            "waits %s" % [(w.get("kind"), (w.get("site") or {}).get("line"))
                          for w in rep.get("waits") or []])


if __name__ == "__main__":
    sys.exit(main())
