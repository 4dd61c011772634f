"""fork() and subprocesses under pyprof, on tests/workloads/forker.py.

Asserts, per interpreter:
- the workload runs to the end (the forked child too) and exits 0;
- the parent's FORK-PARENT-BEFORE (5 x 256 KiB) and FORK-PARENT-AFTER
  (7 x 128 KiB) sites have exact alloc/live counts and sizes, so neither the
  fork nor the child's activity corrupted the parent's accounting;
- the child's FORK-CHILD allocations (40 x 1 MiB) are not charged to the
  parent: no site at that line, and heap live/peak bytes stay below them;
- all of the above also when the child leaves through sys.exit(0)
  (--child-exit=normal), finalizing and running its atexit handlers, so
  a child's end is not taken for the parent's;
- the subprocess the parent runs does not inherit LD_PRELOAD with
  libpyprof (pyprof does not follow children unless asked).
"""
import re
import sys

import harness as h

W = "forker.py"
BEFORE = ("FORK-PARENT-BEFORE", 5, 262144)
AFTER = ("FORK-PARENT-AFTER", 7, 131072)
CHILD_BYTES = 40 << 20
HDR = 256


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py, [])
        one(label, py, ["--child-exit=normal"])
    h.done()


def one(label, py, args):
    t = "%s fork%s" % (label, "".join(" " + a for a in args))
    r = h.record(py, W, args)
    h.check(r.rc == 0 and "child allocated 40 blocks" in r.out and "child status 0" in r.out
            and "parent holds 12 blocks" in r.out, t + ": parent and child run to the end",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    m = re.search(r"^forker: subprocess LD_PRELOAD=(.*)$", r.out, re.M)
    h.check(m is not None and "libpyprof" not in m.group(1),
            t + ": subprocess has no LD_PRELOAD with libpyprof",
            "subprocess saw LD_PRELOAD=%r" % (m.group(1) if m else "(no output line)"))
    rep = r.report
    h.check(rep is not None, t + ": report parses", r.why)
    rep = rep or {}
    for mk, count, size in (BEFORE, AFTER):
        f, ln, fn = h.marker_site(W, mk)
        site, why = h.one_site(rep, f, ln) if rep else (None, "no report")
        s = site or {}
        lo, hi = count * size, count * (size + HDR)
        h.check(site is not None and s.get("function") == fn and s.get("alloc_count") == count
                and s.get("live_count") == count and lo <= (s.get("live_bytes") or 0) <= hi,
                "%s: parent site %s:%d exact (%d x %d)" % (t, W, ln, count, size),
                why or h.fmt_site(site))
    f, ln, fn = h.marker_site(W, "FORK-CHILD")
    hits = h.sites_at(rep.get("sites"), f, ln)
    h.check(rep and not hits, "%s: child's %s:%d not charged to the parent" % (t, W, ln),
            "no report" if not rep else "sites has it: %s" % h.fmt_site(hits[0] if hits else None))
    heap = rep.get("heap") or {}
    h.check(rep and 0 < (heap.get("live_bytes") or 0) < CHILD_BYTES
            and 0 < (heap.get("peak_bytes") or 0) < CHILD_BYTES,
            t + ": heap live/peak below the child's 40 MiB",
            "heap %s" % {k: v for k, v in heap.items() if k != "timeline"})


if __name__ == "__main__":
    sys.exit(main())
