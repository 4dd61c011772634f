"""Objects re-created from CPython's freelists are charged to the line that
re-creates them (tests/workloads/freelists.py).

For each of list, dict, tuple and float, prime_T fills the type's freelist
and leak_T keeps objects that come off it. tracemalloc (stdlib), in a
separate plain run of the same workload (--tracemalloc), gives each line's
live bytes: it re-tags a block whenever an object is re-created. Asserts,
per interpreter:
- full mode: each FL-LEAK-T line's live_bytes >= 98% of tracemalloc's for
  that line; no site of prime_T is in `leaks`, and prime_T holds almost
  nothing live (PRIME_SLACK: what a freelist still holds at exit, and dict
  keys tables, which are not objects: the keys freelist leaves them where
  they were first allocated, for tracemalloc too);
- --sample 4096: the same, with the leak lines' estimates >= 85% of
  tracemalloc's (about 1,400 recorded blocks per line: a relative sd of
  ~3%, so 85% is 5 sd; an allocator-only view gives a list line ~15%);
- the program starting tracemalloc itself: pyprof still charges the leak
  lines at least what that run's tracemalloc reports, prime_T is not
  flagged, and tracemalloc's own figures stay those of the plain run
  (pyprof chains to its reference tracer on 3.13+ instead of breaking it).
  prime_T's live bytes are not checked there: tracemalloc's own tables,
  allocated through pyprof's hooks, are charged to the running line.
"""
import json

import harness as h

W = "freelists.py"
TYPES = ("list", "dict", "tuple", "float")
SAMPLE = 4096
PRIME_SLACK = 64 * 1024
N = 150000  # the workload's N


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        tm, why = tracemalloc_lines(py)
        if not h.check(tm is not None, "%s freelists: plain tracemalloc run" % label, why):
            continue
        verdicts(label, py, tm, (), "full", 0.98, 0.01)
        verdicts(label, py, tm, ("--sample", str(SAMPLE)), "sampled", 0.85, 0.05)
        program_tracemalloc(label, py, tm)
    h.done()


def parse_tm(out):
    for line in out.splitlines():
        if line.startswith("TRACEMALLOC "):
            return {int(k): v for k, v in json.loads(line[len("TRACEMALLOC "):]).items()}
    return None


def tracemalloc_lines(py):
    r = h.run([py, h.workload_path(W), "--tracemalloc"])
    tm = parse_tm(r.out) if r.rc == 0 else None
    return tm, "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err))


def prime_sites(rep, f, fn):
    return [s for s in rep.get("sites") or [] if s.get("file") == f and s.get("function") == fn]


def check_types(t, rep, tm, lo, prime_share, check_prime_live=True,
                check_flagged=True):
    # check_flagged: off when the program runs tracemalloc itself: its
    # trace tables (charged to the lines whose allocations they trace)
    # are rehashed into new blocks at other lines, which the floor rule
    # sees as falls (README, "Freelists")
    leaks = rep.get("leaks") or []
    for ty in TYPES:
        f, ln, _ = h.marker_site(W, "FL-LEAK-" + ty.upper())
        _, _, pfn = h.marker_site(W, "FL-PRIME-" + ty.upper())
        want = (tm.get(ln) or [0])[0]
        site, why = h.one_site(rep, f, ln)
        live = (site or {}).get("live_bytes") or 0
        h.check(want > 0 and live >= lo * want,
                "%s: %s leak line live >= %d%% of tracemalloc's" % (t, ty, round(lo * 100)),
                "%s: pyprof %s, tracemalloc %s" % (why, h.fmt_site(site), want))
        h.check(not check_flagged or bool(h.sites_at(leaks, f, ln)),
                "%s: %s leak line flagged as a leak" % (t, ty),
                "%s; leaks: %s" % (h.fmt_site(site), [h.fmt_site(s) for s in leaks[:6]]))
        ps = prime_sites(rep, f, pfn)
        flagged = [s for s in ps if h.sites_at(leaks, f, s.get("line"))]
        h.check(not flagged, "%s: %s never flagged" % (t, pfn),
                "in leaks: %s" % [h.fmt_site(s) for s in flagged])
        if check_prime_live:
            held = sum(s.get("live_bytes") or 0 for s in ps)
            bound = prime_share * want + PRIME_SLACK
            h.check(held <= bound, "%s: %s holds ~nothing live" % (t, pfn),
                    "%d bytes live at %s (bound %d): %s" % (
                        held, pfn, bound, [h.fmt_site(s) for s in ps]))


def verdicts(label, py, tm, extra, mode, lo, prime_share):
    t = "%s freelists %s" % (label, mode)
    r = h.record(py, W, extra_pyprof_args=extra)
    ok = h.check(r.rc == 0 and "freelists: kept %d lists" % N in r.out and r.report is not None,
                 t + ": exits 0, report parses",
                 "rc %s; %s; stdout %s; stderr %s" % (r.rc, r.why, h.tail(r.out), h.tail(r.err)))
    check_types(t, r.report if ok else {}, tm, lo, prime_share)


def program_tracemalloc(label, py, plain_tm):
    t = "%s freelists program-tracemalloc" % label
    r = h.record(py, W, args=("--tracemalloc",))
    own = parse_tm(r.out) if r.rc == 0 else None
    ok = h.check(own is not None and r.report is not None, t + ": exits 0, report parses",
                 "rc %s; %s; stdout %s; stderr %s" % (r.rc, r.why, h.tail(r.out), h.tail(r.err)))
    own = own or {}
    check_types(t, r.report if ok else {}, own, 0.98, 0, check_prime_live=False,
                check_flagged=False)
    for ty in TYPES:
        ln = h.line_of(W, "FL-LEAK-" + ty.upper())
        a, b = (own.get(ln) or [0])[0], (plain_tm.get(ln) or [0])[0]
        h.check(b > 0 and abs(a - b) <= 0.02 * b,
                "%s: tracemalloc's own %s line unchanged under pyprof" % (t, ty),
                "under pyprof %d, plain %d" % (a, b))


if __name__ == "__main__":
    main()
