"""Leak detection on tests/workloads/service.py under every interpreter.

Asserts, per interpreter:
- the three planted leaks (LEAK-CACHE, LEAK-CLOSURE, LEAK-CYCLE) are in
  `leaks` with the exact absolute file, line and function;
- none of the look-alikes (CHURN, LRU-VALUE, GC-CYCLE) is in `leaks`, and
  each of them was seen (it is in `sites`, with the expected live state);
- the cache and cycle leak sites count exactly the blocks the workload
  says it keeps (one block per entry, all alive at exit);
- `sites` is sorted by live_bytes, largest first;
- every site's `stack` starts with the site itself, innermost first, and the
  cache leak's stack is the workload's call chain;
- with --sample 65536, the same leaks are flagged and the same look-alikes
  are not.
"""
import re
import sys

import harness as h

W = "service.py"
LEAKS = [("cache", "LEAK-CACHE"), ("closure", "LEAK-CLOSURE"), ("cycle", "LEAK-CYCLE")]
NON_LEAKS = [("churn", "CHURN"), ("bounded LRU", "LRU-VALUE"), ("GC-collected cycle", "GC-CYCLE")]
LRU_CAP = 128  # service.LRU_CAP
CACHE_CHAIN = ["cache_response", "handle_request", "serve", "main", "<module>"]


SAMPLE = 65536  # ~40-140 samples per leak site over a 3.5 s run


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
        sampled(label, py)
    h.done()


def sampled(label, py):
    """With --sample the same verdicts: leaks flagged, look-alikes not."""
    t = "%s service --sample %d" % (label, SAMPLE)
    r = h.record(py, W, ["--seconds", "3.5"], ["--sample", str(SAMPLE)])
    h.check(r.rc == 0, t + ": exits 0 under record", "rc %s; stderr: %s" % (r.rc, h.tail(r.err)))
    leaks = (r.report or {}).get("leaks") or []
    for kind, mk in LEAKS + NON_LEAKS:
        f, ln, fn = h.marker_site(W, mk)
        hits = h.sites_at(leaks, f, ln)
        site, why = h.one_site(r.report, f, ln) if r.report else (None, "no report: %s" % r.why)
        if (kind, mk) in LEAKS:
            h.check(len(hits) == 1 and hits[0].get("function") == fn,
                    "%s: %s leak flagged at %s:%d" % (t, kind, W, ln),
                    why or "not in leaks; site %s" % h.fmt_site(site))
        else:
            h.check(r.report and not hits, "%s: %s not flagged (%s:%d)" % (t, kind, W, ln),
                    why or "in leaks: %s" % h.fmt_site(site))


def one(label, py):
    t = "%s service" % label
    r = h.record(py, W, ["--seconds", "3.5"])
    h.check(r.rc == 0, t + ": exits 0 under record", "rc %s; stderr: %s" % (r.rc, h.tail(r.err)))
    m = re.search(r"service: (\d+) requests, cache=(\d+) callbacks=(\d+) sessions=(\d+)", r.out)
    rep = r.report
    names = []
    for kind, mk in LEAKS:
        f, ln, fn = h.marker_site(W, mk)
        names.append("%s: %s leak flagged at %s:%d" % (t, kind, W, ln))
    for kind, mk in NON_LEAKS:
        f, ln, fn = h.marker_site(W, mk)
        names.append("%s: %s not flagged (%s:%d)" % (t, kind, W, ln))
        names.append("%s: %s seen in sites (%s:%d)" % (t, kind, W, ln))
    names += [t + ": cache leak live_count exact", t + ": cycle leak live_count exact",
              t + ": sites sorted by live_bytes", t + ": stack[0] is the site",
              t + ": cache leak stack is the call chain"]
    if not h.check(rep is not None, t + ": report parses", r.why):
        for n in names:
            h.check(False, n, "no report")
        return
    leaks, sites = rep.get("leaks") or [], rep.get("sites") or []

    for kind, mk in LEAKS:
        f, ln, fn = h.marker_site(W, mk)
        hits = h.sites_at(leaks, f, ln)
        site, why = h.one_site(rep, f, ln)
        detail = "not in leaks (%d leaks: %s); site: %s %s" % (
            len(leaks), [(x.get("file"), x.get("line")) for x in leaks][:8], h.fmt_site(site), why)
        if hits and hits[0].get("function") != fn:
            detail = "in leaks with function %r, expected %r" % (hits[0].get("function"), fn)
        h.check(len(hits) == 1 and hits[0].get("function") == fn and hits[0].get("leak") is not False,
                "%s: %s leak flagged at %s:%d" % (t, kind, W, ln), detail)

    for kind, mk in NON_LEAKS:
        f, ln, fn = h.marker_site(W, mk)
        hits = h.sites_at(leaks, f, ln)
        h.check(not hits, "%s: %s not flagged (%s:%d)" % (t, kind, W, ln),
                "in leaks: %s" % (h.fmt_site(hits[0]) if hits else ""))
        site, why = h.one_site(rep, f, ln)
        ok, detail = site is not None, why
        if site is not None:
            n = site.get("alloc_count") or 0
            live = site.get("live_count")
            detail = h.fmt_site(site)
            if mk == "CHURN":  # every request made one, none is alive at exit
                ok = n >= 100 and live == 0
            elif mk == "LRU-VALUE":  # full after LRU_CAP requests, flat after
                ok = n >= 2 * LRU_CAP and live == LRU_CAP
            else:  # collected every gen-0 pass: a bounded number alive
                ok = n >= 100 and live is not None and live < n / 2
        h.check(ok, "%s: %s seen in sites (%s:%d)" % (t, kind, W, ln), detail)

    # exact counts: one str per request in the cache, one bytes per session
    for key, mk, group in (("cache", "LEAK-CACHE", 2), ("cycle", "LEAK-CYCLE", 4)):
        f, ln, fn = h.marker_site(W, mk)
        site, why = h.one_site(rep, f, ln)
        want = int(m.group(group)) if m else None
        got = site and site.get("live_count")
        h.check(want is not None and got == want and site.get("alloc_count") == want,
                "%s: %s leak live_count exact" % (t, key),
                "workload kept %s, site %s %s; stdout: %s" % (want, h.fmt_site(site), why,
                                                                h.tail(r.out)))

    lb = [s.get("live_bytes") for s in sites]
    bad = [i for i in range(len(lb) - 1) if not (lb[i] >= lb[i + 1])]
    h.check(sites and not bad, t + ": sites sorted by live_bytes",
            "no sites" if not sites else "out of order at %s: %s" % (bad[:5], lb[:12]))

    wrong = []
    for s in sites:
        st = s.get("stack")
        if not st and not s.get("line"):
            continue  # allocations made with no Python frame: nothing to start with
        if not st or h.frame_key(st[0]) != h.frame_key(s):
            wrong.append((h.frame_key(s), st[:1] if st else st))
    h.check(sites and not wrong, t + ": stack[0] is the site",
            "%d of %d sites, e.g. %s" % (len(wrong), len(sites), wrong[:3]))

    f, ln, fn = h.marker_site(W, "LEAK-CACHE")
    site, why = h.one_site(rep, f, ln)
    chain = [fr.get("function") for fr in (site or {}).get("stack") or []]
    files = {fr.get("file") for fr in (site or {}).get("stack") or []}
    h.check(chain == CACHE_CHAIN and files == {f}, t + ": cache leak stack is the call chain",
            "stack functions %s files %s, expected %s in %s %s" % (chain, files, CACHE_CHAIN, f, why))


if __name__ == "__main__":
    sys.exit(main())
