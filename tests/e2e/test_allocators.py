"""Exact counts on exact.py whatever allocator set-up the interpreter runs.

README/contract: a block seen by two hooks (a PyMem wrapper that calls
malloc) is counted once, and a site holds the blocks the program asked for.
Per interpreter, and for each of PYTHONMALLOC=malloc (PyObject_Malloc is
malloc: both hooks see every block), PYTHONMALLOC=debug (debug hooks pad
each block and call the raw allocator) and PYTHONTRACEMALLOC=5 (tracemalloc
chained on the same PyMem_SetAllocator hooks before pyprof):
- the command exits 0 and prints its line;
- the EXACT-1MIB site counts alloc_count == live_count == 23, live_bytes
  within [23 MiB, 23 MiB + 23*256] (not the padded or doubled size);
- events.dropped == 0.
The same with --sample 4096 (a 1 MiB block is recorded with probability
1 - e^-256, weight 1: the counts stay exact), where recorded blocks come
from pyprof's own region: and a forked child, which records nothing,
frees them, grows one and exits with status 0 (the debug hooks would
abort on a block they did not make).
"""
import sys

import harness as h

W = "exact.py"
N, SIZE, HDR = 23, h.MIB, 256
SETUPS = [
    {"PYTHONMALLOC": "malloc"},
    {"PYTHONMALLOC": "debug"},
    {"PYTHONTRACEMALLOC": "5"},
]


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        for env in SETUPS:
            one(label, py, env)
            one(label, py, env, ("--sample", "4096"))
    h.done()


def one(label, py, env, sample=()):
    t = "%s exact %s%s" % (label, " ".join("%s=%s" % kv for kv in env.items()),
                           " " + " ".join(sample) if sample else "")
    f, ln, fn = h.marker_site(W, "EXACT-1MIB")
    r = h.record(py, W, ["--fork"] if sample else [], list(sample), env=env)
    h.check(r.rc == 0 and "exact: 23 blocks" in r.out, t + ": exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    if sample:
        h.check("exact: child ok" in r.out, t + ": a forked child frees the recorded blocks and exits 0",
                "stdout %s; stderr %s" % (h.tail(r.out), h.tail(r.err)))
    site, why = h.one_site(r.report, f, ln) if r.report else (None, "no report: %s" % r.why)
    s = site or {}
    h.check(s.get("alloc_count") == N and s.get("live_count") == N,
            "%s: %s:%d alloc_count == live_count == 23" % (t, W, ln), why or h.fmt_site(site))
    h.check(N * SIZE <= (s.get("live_bytes") or 0) <= N * (SIZE + HDR),
            "%s: live_bytes in [23 MiB, 23 MiB + 23*256]" % t, why or h.fmt_site(site))
    ev = (r.report or {}).get("events") or {}
    h.check(r.report and ev.get("dropped") == 0, t + ": events.dropped == 0",
            "events %s; %s" % (ev, r.why or ""))


if __name__ == "__main__":
    sys.exit(main())
