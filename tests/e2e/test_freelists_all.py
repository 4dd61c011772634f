"""Every other freelisted type: objects re-created from a freelist or a
cache are charged to the line that re-creates them
(tests/workloads/freelists_all.py; lists, dicts, tuples and floats are
test_freelists.py's, start-up's freelists test_freelists_start.py's).

Per interpreter, recording every allocation, for frames, async generator
asend objects, contextvars contexts, slices and MemoryError: after a
churn of that type at FA-CHURN-KIND (BATCH at a time, which fills its
freelist), the line FA-KEEP-KIND that keeps N holds exactly N live
objects (frames: a kept generator on 3.9/3.10 is two objects, the
generator and its frame, both made at that line; a 3.11+ generator holds
its frame and is made at its def line, FA-GEN, so that line is added),
and the churn lines hold none (3.13+: at most PARKED objects waiting on
their freelists). Async generator wrapped values cannot be kept: the
line that yields N of them has made N of them (alloc_count N to N+2:
the generator's first suspension makes one or two short-lived blocks of
its own there, 1 on 3.10, 2 on 3.11/3.12; with the re-created ones
uncounted it is 1 or 2; on 3.13+ each is the same parked block, re-made
at the line that parked it, which counts as an allocation there).

Not checked where README says it is not covered: MemoryError on
3.9-3.12 (its freelist is the interpreter's out-of-memory reserve); on
3.9 the asend, wrapped value, context and slice freelists (static
variables of the interpreter).
"""
import sys

import harness as h

W = "freelists_all.py"
N = 500
KINDS = ("frame", "asend", "context", "slice", "memerr")
STATIC_39 = ("asend", "context", "slice", "memerr", "agval")
# 3.13+: what a churn line dropped last may wait on its freelist, still
# charged to it (README, "parked"): the asend line's asend and the args
# tuple of the StopIteration that its send raises
PARKED = 2


def minor_of(py):
    r = h.run([py, "-c", "import sys; print(sys.version_info[1])"])
    return int(r.out.strip()) if r.rc == 0 and r.out.strip().isdigit() else None


def live_at(sites, file, line, func=None):
    return sum(s.get("live_count") or 0 for s in h.sites_at(sites, file, line)
               if func is None or s.get("function") == func)


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s all freelists" % label
    minor = minor_of(py)
    r = h.record(py, W)
    if not h.check(minor is not None and r.rc == 0 and r.report is not None
                   and "freelists_all: kept" in r.out, t + ": recorded and reported",
                   "minor %s rc %s; %s; stderr %s" % (minor, r.rc, r.why, h.tail(r.err))):
        return
    sites = r.report.get("sites") or []
    for kind in KINDS:
        if minor == 9 and kind in STATIC_39:
            print("note: %s %s: not covered on 3.9 (README)" % (t, kind))
            continue
        if minor <= 12 and kind == "memerr":
            print("note: %s memerr: not covered on 3.%d (README)" % (t, minor))
            continue
        f, line, _ = h.marker_site(W, "FA-KEEP-" + kind.upper())
        want = N * (2 if kind == "frame" and minor <= 10 else 1)
        got = live_at(sites, f, line)
        if kind == "frame":
            got += live_at(sites, *h.marker_site(W, "FA-GEN")[:2], func="gen")
        h.check(got == want, "%s: %s keep line holds exactly %d live objects" % (t, kind, want),
                "got %d" % got)
        churn = [m for m in ("FA-CHURN-" + kind.upper(), "FA-CHURN-" + kind.upper() + "2")
                 if m in open(h.workload_path(W)).read()]
        held = {m: live_at(sites, *h.marker_site(W, m)[:2]) for m in churn}
        bound = PARKED if minor >= 13 else 0
        h.check(sum(held.values()) <= bound, "%s: %s churn lines hold %s live" % (
            t, kind, "nothing" if not bound else "at most %d parked objects" % bound),
            "live: %s" % held)
    if minor == 9:
        print("note: %s agval: alloc count not checked on 3.9 (README)" % t)
        return
    f, line, _ = h.marker_site(W, "FA-KEEP-AGVAL")
    at = h.sites_at(sites, f, line)
    n = sum(s.get("alloc_count") or 0 for s in at)
    h.check(N <= n <= N + 2, "%s: agval: %d wrapped values made at the yield line" % (t, N),
            "alloc_count %d (N to N+2)" % n)


if __name__ == "__main__":
    sys.exit(main())
