"""--from SEC --to SEC on text, json and collapsed (pprof: test_pprof.py,
chrome: test_exports.py), against tests/workloads/growth.py, whose
growth in its second phase is known.

Phase 2 is found from the whole run's timeline (the baseline's 8 MiB
at the start, then a flat heap for GAP seconds, then phase 2's +2 MiB
at the tick T2; phase 3 comes GAP later), and the window is
[T2 - 0.1 - GAP/2, T2 + GAP/2]:
- JSON: GROWTH allocated in the window all the bytes the whole run has
  there, and still holds them at its end, at least 97 blocks of 40 KiB
  (give or take the list KEEP's buffer, reallocated in phase 3); TEMP
  allocated all its 53 blocks of 256 KiB in the window and kept none
  (under 1 KiB live: 3.13 keeps a small object there); AFTER (phase 3)
  and BASELINE (before) allocated nothing in
  it, and BASELINE's growth_bytes is minus the quarter freed in it; the
  sites' live bytes add up to the heap's, their growth to the window's
  heap growth; the timeline lies inside the window; leaks grew in it;
- --from 0 (no end) is the whole-run report, site by site;
- text: names the window, lists GROWTH and not AFTER;
- collapsed --by live / alloc over the window: lines per innermost frame
  add up to the JSON window's sites;
- bad windows: --to before --from, --to 0, a window past the trace's
  end: one line, status 2, no output file left.
"""
import json
import os

import harness as h

W = "growth.py"
LABELS = ("py3.11-debian", "py3.13-trixie")
GAP = 1.5
KIB = 1024


def report(trace, *args):
    r = h.pyprof("report", trace, "--format", "json", *args)
    try:
        return json.loads(r.out), r
    except ValueError:
        return None, r


def site(rep, marker):
    f, line, fn = h.marker_site(W, marker)
    hits = h.sites_at(rep["sites"], f, line)
    return hits[0] if hits else None


def fig(s, key):
    return s[key] if s else 0


def frame(s):
    return "%s (%s:%d)" % (s[2], s[0], s[1])


def by_site(text):
    sums = {}
    for line in text.splitlines():
        stack, _, v = line.rpartition(" ")
        inner = stack.split(";")[-1]
        sums[inner] = sums.get(inner, 0) + int(v)
    return sums


def check_json(label, full, win, lo, hi):
    g, t, a, b = (site(win, m) for m in ("GROWTH", "TEMP", "AFTER", "BASELINE"))
    gf, tf, bf = site(full, "GROWTH"), site(full, "TEMP"), site(full, "BASELINE")
    w = win.get("window", {})
    h.check(w and w["from_s"] >= lo - 1e-3 and w["from_s"] <= lo + 0.25
            and w["to_s"] >= hi - 1e-3 and w["to_s"] <= hi + 0.25,
            "%s json --from %.2f --to %.2f: the window's edges on the next ticks" % (label, lo, hi),
            w)
    h.check(g and gf and g["alloc_bytes"] == gf["alloc_bytes"]
            and abs(g["live_bytes"] - gf["live_bytes"]) <= 8 * KIB
            and g["alloc_bytes"] - g["live_bytes"] <= 8 * KIB and g["live_bytes"] >= 97 * 40 * KIB,
            "%s json window: GROWTH allocated all its bytes in it and kept them, "
            ">= 97 x 40 KiB" % label,
            "window %s, run %s" % (h.fmt_site(g), h.fmt_site(gf)))
    h.check(t and tf and t["alloc_bytes"] == tf["alloc_bytes"] >= 53 * 256 * KIB
            and t["live_bytes"] < KIB,
            "%s json window: TEMP allocated 53 x 256 KiB in it, kept none of them" % label,
            "window %s, run %s" % (h.fmt_site(t), h.fmt_site(tf)))
    h.check(fig(a, "alloc_bytes") == 0 and fig(a, "live_bytes") == 0,
            "%s json window: AFTER (phase 3) allocated nothing in it" % label, h.fmt_site(a))
    h.check(fig(b, "alloc_bytes") == 0 and fig(b, "live_bytes") == 0
            and b and b.get("growth_bytes", 0) <= -32 * 64 * KIB
            and b["growth_bytes"] >= -(32 * 64 * KIB + 64 * KIB),
            "%s json window: BASELINE allocated nothing, grew by minus the quarter freed" % label,
            "%s growth %s" % (h.fmt_site(b), b and b.get("growth_bytes")))
    live = sum(s["live_bytes"] for s in win["sites"])
    grown = sum(s.get("growth_bytes", 0) for s in win["sites"])
    h.check(live == win["heap"]["live_bytes"] and grown == w.get("growth_bytes")
            and w.get("growth_bytes") == w.get("heap_live_bytes_at_to", 0) - w.get(
                "heap_live_bytes_at_from", 0),
            "%s json window: sites add up to the heap's live bytes and its growth" % label,
            "sites live %d vs %s, growth %d vs %s" % (live, win["heap"]["live_bytes"], grown,
                                                     w.get("growth_bytes")))
    tl = win["heap"]["timeline"]
    h.check(tl and all(w["from_s"] - 1e-3 <= p["t"] <= w["to_s"] + 1e-3 for p in tl),
            "%s json window: the timeline lies inside the window" % label,
            "%d points, %s..%s" % (len(tl), tl and tl[0]["t"], tl and tl[-1]["t"]))
    h.check(all(s.get("growth_bytes", 0) > 0 for s in win["leaks"]),
            "%s json window: every leak listed grew in the window" % label,
            [(s["line"], s.get("growth_bytes")) for s in win["leaks"]][:5])


def check_whole(label, trace, full):
    w0, r = report(trace, "--from", "0")
    key = lambda s: (s["file"], s["line"], s["function"])
    figs = lambda s: (s["live_bytes"], s["live_count"], s["alloc_bytes"], s["alloc_count"])
    if not h.check(w0 is not None, "%s json --from 0: a report" % label, h.tail(r.err)):
        return
    a = {key(s): figs(s) for s in full["sites"]}
    b = {key(s): figs(s) for s in w0["sites"]}
    diff = [(k, a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)]
    h.check(not diff and w0["heap"]["live_bytes"] == full["heap"]["live_bytes"],
            "%s json --from 0: every site as in the whole-run report" % label,
            "%d differ: %s" % (len(diff), diff[:3]))


def check_text(label, trace, lo, hi):
    r = h.pyprof("report", trace, "--from", "%.3f" % lo, "--to", "%.3f" % hi)
    g, a = h.marker_site(W, "GROWTH"), h.marker_site(W, "AFTER")
    h.check(r.rc == 0 and "\nwindow " in r.out[:400],
            "%s text --from --to: names the window" % label, h.tail(r.err + r.out[:300]))
    h.check("%s:%d" % (g[0], g[1]) in r.out and "%s:%d" % (a[0], a[1]) not in r.out,
            "%s text --from --to: lists GROWTH, not AFTER" % label, h.tail(r.out, 600))


def check_collapsed(label, trace, win, lo, hi):
    for by, key in (("live", "live_bytes"), ("alloc", "alloc_bytes")):
        r = h.pyprof("report", trace, "--format", "collapsed", "--by", by,
                     "--from", "%.3f" % lo, "--to", "%.3f" % hi)
        sums = by_site(r.out)
        want = {}
        for s in win["sites"]:
            if s[key] > 0:
                k = ("[no Python frame]" if s["function"] == "<no Python frame>"
                     else "%s (%s:%d)" % (s["function"], s["file"], s["line"]))
                want[k] = s[key]
        diff = [(k, sums.get(k), v) for k, v in want.items() if sums.get(k) != v]
        extra = [k for k in sums if k not in want]
        h.check(r.rc == 0 and want and not diff and not extra,
                "%s collapsed --by %s --from --to: lines per site = the JSON window's %s"
                % (label, by, key), "%d differ %s; extra %s" % (len(diff), diff[:3], extra[:3]))


def check_bad(trace, dur):
    out = h.tmpfile("bad-window.json")
    cases = (("--to before --from", ["--from", "5", "--to", "3"]),
             ("--to 0", ["--to", "0"]),
             ("a window past the end", ["--from", "%.0f" % (dur + 100)]))
    for name, args in cases:
        for fmt in ("json", "pprof"):
            r = h.pyprof("report", trace, "--format", fmt, "-o", out, *args)
            lines = [l for l in r.err.splitlines() if l.strip() and not l.startswith("Try")]
            h.check(r.rc == 2 and len(lines) == 1 and not os.path.exists(out),
                    "report --format %s, %s: one line, status 2, no output" % (fmt, name),
                    "rc %s, stderr %s" % (r.rc, h.tail(r.err)))


def main():
    h.require_pyprof()
    bad_done = False
    for label, py in h.interpreters():
        if label not in LABELS:
            continue
        rec = h.record(py, W, ["--gap", str(GAP)], ["--sample", "0"])
        if not h.check(rec.report is not None, "%s %s: recorded and reported" % (label, W),
                       rec.why):
            continue
        full = rec.report
        t2 = h.growth_phase2_tick(full)
        if not h.check(t2 is not None, "%s %s: phase 2 shows in the timeline" % (label, W),
                       [(p["t"], p["live_bytes"]) for p in full["heap"]["timeline"][::3]]):
            continue
        lo, hi = t2 - 0.1 - GAP / 2, t2 + GAP / 2
        win, r = report(rec.trace, "--from", "%.3f" % lo, "--to", "%.3f" % hi)
        if h.check(win is not None and r.rc == 0, "%s json --from --to: a report" % label,
                   h.tail(r.err)):
            check_json(label, full, win, lo, hi)
            check_collapsed(label, rec.trace, win, lo, hi)
        check_whole(label, rec.trace, full)
        check_text(label, rec.trace, lo, hi)
        if not bad_done:
            check_bad(rec.trace, full["duration_s"])
            bad_done = True
    h.done()


main()
