"""Every event of a long, allocation-heavy run reaches the trace:
tests/workloads/churn_exact.py (300,000 iterations, about ten events
each, so the collector drains the ring in large runs) keeps exactly
600 blocks of 64 KiB made at one marked line among millions of events.

Per interpreter:
- `pyprof record` (every allocation): exit 0, the workload's output
  intact; the KEEP-64K site has alloc_count == live_count == 600, its
  live_bytes within [600 * 64 KiB, 600 * (64 KiB + 256)];
  events.dropped == 0 and events.total at least 4 per iteration (the
  churn is recorded, not only the kept blocks);
- the live run of the same command (no terminal: the text report at the
  end, fed record by record rather than through the trace writer's
  path) names the same site with the same 600 allocations.
"""
import re

import harness as h

W = "churn_exact.py"
N = 300000
KEEP_EVERY = 500
K = (N + KEEP_EVERY - 1) // KEEP_EVERY
SIZE = 1 << 16
HDR = 256


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s churn" % label
    f, ln, fn = h.marker_site(W, "KEEP-64K")
    want_out = "churn: %d iterations, %d blocks kept" % (N, K)
    r = h.record(py, W, args=(str(N),), extra_pyprof_args=("--sample", "0"))
    h.check(r.rc == 0 and want_out in r.out, t + ": record exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    rep = r.report or {}
    site, why = h.one_site(rep, f, ln) if r.report else (None, r.why)
    s = site or {}
    h.check(s.get("alloc_count") == K and s.get("live_count") == K,
            t + ": the trace counts the %d kept blocks exactly" % K, why or h.fmt_site(site))
    h.check(K * SIZE <= (s.get("live_bytes") or 0) <= K * (SIZE + HDR),
            t + ": their live bytes", why or h.fmt_site(site))
    ev = rep.get("events") or {}
    h.check(ev.get("dropped") == 0 and (ev.get("total") or 0) >= 4 * N,
            t + ": no event dropped, the churn recorded", "events %s" % ev)

    live = h.pyprof("--", py, h.workload_path(W), str(N))
    row = None
    for line in live.err.splitlines():
        if re.search(r"\s%s:%d %s$" % (re.escape(f), ln, re.escape(fn)), line):
            row = line
            break
    # Top sites: LIVE ALLOCATED ALLOCS [LEAK] SITE (sizes carry a unit)
    m = re.match(r"\s*[\d.]+ \S+\s+[\d.]+ \S+\s+(\d+)\s", row or "")
    h.check(live.rc == 0 and want_out in live.out and m and int(m.group(1)) == K,
            t + ": the live run's report has the same %d allocations there" % K,
            "rc %s; row %r; stderr %s" % (live.rc, row, h.tail(live.err)))


if __name__ == "__main__":
    main()
