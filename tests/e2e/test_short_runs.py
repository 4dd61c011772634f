"""Leak verdicts on short runs (README, "What counts as a leak"), per interpreter.

- `service.py --seconds 0.5` (0.5 s of requests after start-up; LRU
  capped at 16 so it is full after 16 requests; gen-0 GC threshold 250
  (700, CPython's before 3.13, collected the request-scoped cycles every
  ~175 requests: on a loaded machine the run is twice as long in time
  but not in requests, one collection in 8 windows, and a judged span
  of 14 steps with one fall is "growth with one clear", a leak by the
  rule: seen in a CI run at load 19), and a gen-1 collection every 3 gen-0 ones, so the
  request-scoped cycles are collected several times within the run, not
  once, also those a gen-0 collection found still in use and moved to
  gen 1, which at the default 10 may see one collection in 0.5 s:
  growth with one clear, which the rule calls a leak):
  the three planted leaks are flagged and none of the look-alikes
  (CHURN, LRU-VALUE, GC-CYCLE) is; the run's length is printed (the
  exact limit, 9 windows of 25 ms, is tested in tests/unit/test_model.c);
- the live viewer in batch mode (`-b -d 0.2`) on a 1 s run names the
  cache leak in a frame before the last, while the program still runs.
"""
import re

import harness as h

W = "service.py"
LEAKS = [("cache", "LEAK-CACHE"), ("closure", "LEAK-CLOSURE"), ("cycle", "LEAK-CYCLE")]
NON_LEAKS = [("churn", "CHURN"), ("bounded LRU", "LRU-VALUE"), ("GC-collected cycle", "GC-CYCLE")]
FRAME = re.compile(r"^=== pyprof frame (\d+)(?:/(\d+))? =+$", re.M)


def verdicts(label, py):
    t = "%s short run" % label
    r = h.record(py, W, ["--seconds", "0.5", "--lru-cap", "16", "--gc-threshold", "250",
                        "--gc-threshold1", "3"])
    rep = r.report
    if not h.check(r.rc == 0 and rep is not None, t + ": recorded and reported",
                   "rc %s; %s" % (r.rc, r.why)):
        return
    print("# %s: run %.2f s, %d leaks" % (t, rep.get("duration_s", 0), len(rep.get("leaks", []))))
    leaks = rep.get("leaks") or []
    for kind, mk in LEAKS + NON_LEAKS:
        f, ln, fn = h.marker_site(W, mk)
        hits = h.sites_at(leaks, f, ln)
        site, why = h.one_site(rep, f, ln)
        if (kind, mk) in LEAKS:
            h.check(len(hits) == 1, "%s: %s leak flagged at %s:%d" % (t, kind, W, ln),
                    "run %.2f s; site %s %s" % (rep.get("duration_s", 0), h.fmt_site(site), why))
        else:
            h.check(site is not None and not hits,
                    "%s: %s seen, not flagged (%s:%d)" % (t, kind, W, ln),
                    "site %s %s" % (h.fmt_site(site), why))


def live(label, py):
    t = "%s short run, live viewer" % label
    cache = "service.py:%d" % h.line_of(W, "LEAK-CACHE")
    r = h.pyprof("-b", "-d", "0.2", "--", py, h.workload_path(W), "--seconds", "1",
                 "--lru-cap", "16", "--gc-threshold", "700")
    marks = list(FRAME.finditer(r.out))
    frames = [r.out[m.start():(marks[i + 1].start() if i + 1 < len(marks) else len(r.out))]
              for i, m in enumerate(marks)]
    named = [i for i, fr in enumerate(frames)
             if re.search(r"^Leaks \(\d+\).*?(?=\n\n|\Z)", fr, re.M | re.S)
             and cache in re.search(r"^Leaks \(\d+\).*?(?=\n\n|\Z)", fr, re.M | re.S).group(0)]
    up = [re.search(r"\bup ([\d.]+)s", fr) for fr in frames]
    h.check(r.rc == 0 and named and named[0] < len(frames) - 1,
            t + ": the cache leak is named before the run ends",
            "rc %s; %d frames, named in %s; up %s" % (
                r.rc, len(frames), named, [u.group(1) if u else None for u in up]))
    seen = [i for i, fr in enumerate(frames) if cache in fr]
    if named and seen and up[named[0]] and up[seen[0]]:
        print("# %s: in Sites at up %s s, named a leak at up %s s" % (
            t, up[seen[0]].group(1), up[named[0]].group(1)))


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        verdicts(label, py)
        live(label, py)
    h.done()


if __name__ == "__main__":
    main()
