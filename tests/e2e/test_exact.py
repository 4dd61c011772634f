"""Exact counts on tests/workloads/exact.py (23 blocks of 1 MiB, alive at exit).

Asserts, per interpreter:
- pyprof passes exit 0 through and the report has the contract's header
  (pyprof.format 1, target.python = the interpreter's version, target.argv
  names the workload);
- the site at EXACT-1MIB (function `allocate`) has alloc_count == 23 and
  live_count == 23 exactly, live_bytes and alloc_bytes within
  [23 MiB, 23 MiB + 23*256] (each block is 1 MiB plus a small object header);
- heap.live_bytes >= 23 MiB; events.dropped == 0;
- with --sample 524288 the site's estimated live_bytes is near 23 MiB (see
  SAMPLED_LO/HI for the tolerance and why).
"""
import math
import sys

import harness as h

W = "exact.py"
N = 23
SIZE = h.MIB
HDR = 256  # generous bound on an object header per block
SAMPLE = 524288

# Sampling a 1 MiB block with mean distance 512 KiB: the block is sampled with
# p = 1 - exp(-2) ~ 0.8647, independently per block (a Poisson process over
# allocated bytes), and an unbiased estimator weights it by SIZE / p. So the
# estimate is K * SIZE / p with K ~ Binomial(23, p): mean 23 MiB, relative sd
# 8.2%. The estimate cannot exceed 23 MiB / p = +15.7%, so +30% only catches
# a wrong weighting. The lower bound -35% fails iff K <= 12, which happens
# with probability 7.8e-5 per interpreter (K <= 13 would be -30% and 4.3e-4,
# ~2.6e-3 per run over six interpreters: too flaky for CI).
P = 1 - math.exp(-SIZE / SAMPLE)
SAMPLED_LO = 0.65 * N * SIZE
SAMPLED_HI = 1.30 * N * SIZE


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        full(label, py)
        sampled(label, py)
    h.done()


def full(label, py):
    t = "%s exact" % label
    f, ln, fn = h.marker_site(W, "EXACT-1MIB")
    r = h.record(py, W)
    h.check(r.rc == 0 and "exact: 23 blocks" in r.out, t + ": exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    names = [t + ": report header", "%s: site %s:%d function %s" % (t, W, ln, fn),
             t + ": alloc_count == 23", t + ": live_count == 23",
             t + ": live_bytes in [23 MiB, 23 MiB + 23*256]",
             t + ": alloc_bytes in [23 MiB, 23 MiB + 23*256]",
             t + ": heap.live_bytes >= 23 MiB", t + ": events.dropped == 0"]
    rep = r.report
    if not h.check(rep is not None, t + ": report parses", r.why):
        for n in names:
            h.check(False, n, "no report")
        return

    want_ver = h.python_version(py)
    pp, tg = rep.get("pyprof") or {}, rep.get("target") or {}
    argv = tg.get("argv") or []
    h.check(pp.get("format") == 1 and tg.get("python") == want_ver
            and any(str(a).endswith("/" + W) for a in argv) and isinstance(tg.get("pid"), int),
            names[0], "pyprof %s target %s (want python %s)" % (pp, tg, want_ver))

    site, why = h.one_site(rep, f, ln)
    h.check(site is not None and site.get("function") == fn, names[1], why or h.fmt_site(site))
    s = site or {}
    lo, hi = N * SIZE, N * (SIZE + HDR)
    h.check(s.get("alloc_count") == N, names[2], h.fmt_site(site))
    h.check(s.get("live_count") == N, names[3], h.fmt_site(site))
    h.check(lo <= (s.get("live_bytes") or 0) <= hi, names[4], h.fmt_site(site))
    h.check(lo <= (s.get("alloc_bytes") or 0) <= hi, names[5], h.fmt_site(site))
    heap = rep.get("heap") or {}
    h.check((heap.get("live_bytes") or 0) >= N * SIZE, names[6], "heap %s" % {
        k: v for k, v in heap.items() if k != "timeline"})
    ev = rep.get("events") or {}
    h.check(ev.get("dropped") == 0 and (ev.get("total") or 0) >= N, names[7], "events %s" % ev)


def sampled(label, py):
    t = "%s exact --sample %d" % (label, SAMPLE)
    f, ln, fn = h.marker_site(W, "EXACT-1MIB")
    r = h.record(py, W, extra_pyprof_args=["--sample", str(SAMPLE)])
    h.check(r.rc == 0, t + ": exits 0", "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
    name = t + ": estimated live_bytes within [-35%, +30%] of 23 MiB"
    if r.report is None:
        h.check(False, name, "no report: " + r.why)
        return
    site, why = h.one_site(r.report, f, ln)
    est = (site or {}).get("live_bytes") or 0
    h.check(SAMPLED_LO <= est <= SAMPLED_HI, name,
            "estimate %.2f MiB (%s) %s; an unbiased estimate is k * %.3f MiB, k <= 23" % (
                est / h.MIB, h.fmt_site(site), why, 1 / P))


if __name__ == "__main__":
    sys.exit(main())
