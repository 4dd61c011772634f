"""Objects re-created from blocks made before the hooks were in.

CPython's start-up leaves objects on its freelists (and 3.13+'s one-slot
caches) whose blocks pyprof never saw allocated. A program that re-creates
and keeps such objects first thing (tests/workloads/freelists_start.py:
300 lists, dicts, tuples, floats, ints and slices at marked lines) must
have each of them counted at its line. Per interpreter, recording every
allocation: the list, dict, tuple, float and int lines hold exactly 300
live blocks; the slice line 300 give or take one (one slice is cached in
a slot of its own: 3.9-3.12 do not hand it through the hooks, and on
3.13+ the call's argument tuple goes back to its freelist, staying
charged to the line that last made it, README).
"""
import sys

import harness as h

W = "freelists_start.py"
EXACT = ("list", "dict", "tuple", "float", "int")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s start-up freelists" % label
    r = h.record(py, W)
    if not h.check(r.rc == 0 and r.report is not None and "kept 300" in r.out,
                   t + ": recorded and reported",
                   "rc %s; %s; stderr %s" % (r.rc, r.why, h.tail(r.err))):
        return
    for kind in EXACT + ("slice",):
        file, line, func = h.marker_site(W, "FS-" + kind)
        at = h.sites_at(r.report.get("sites") or [], file, line)
        n = sum(s.get("live_count") or 0 for s in at)
        ok = n == 300 if kind in EXACT else abs(n - 300) <= 1
        h.check(ok, "%s: %s line holds %s300 live blocks" % (
            t, kind, "" if kind in EXACT else "about "), "got %d" % n)


if __name__ == "__main__":
    sys.exit(main())
