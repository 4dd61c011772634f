"""pyprof report --format collapsed / chrome, and their --from/--to windows.

One recording of tests/workloads/service.py per interpreter, then:
- collapsed --by live and --by alloc: every line is "frame;...;frame N"
  (N a positive integer, outermost frame first, no stack twice, valid
  UTF-8); the lines whose innermost frame is a site of the JSON report
  add up to exactly that site's live_bytes (alloc_bytes), every site
  with live bytes has lines, each site's shown stack is one of its
  lines, and the total is the sites' total;
- chrome: a JSON object with traceEvents and displayTimeUnit; every
  event has ph, ts, pid and tid; X events have dur >= 0 and, per
  thread, ts in order; there are as many GC slices per generation as
  the report counts collections; heap and rss counters sit at the
  report's timeline times in microseconds (t * 1e6), with its values;
  the process and every thread with slices are named (M events);
- chrome slices on one thread nest (none ends inside another that it
  began in, which Perfetto would reject);
- on tests/workloads/stalls_lock.py (one interpreter): collapsed --by
  locks sums to the JSON locks' and waits' wait_s (in µs), and chrome
  has one lock slice per contention the report counts;
- windows: alloc over [0, T] plus alloc over [T, end] is the whole
  alloc, stack by stack; over [1 s, 2 s] the LEAK-CACHE line kept what
  it allocated there while CHURN (freed in its request) kept at most
  one buffer though it allocated many (test_windows.py: the window's
  figures on every format); chrome --from/--to keeps only events inside the
  window, and the GC slices of two adjacent windows are the whole
  run's (one spanning the edge may count in both).
"""
import json
import re

import harness as h

W = "service.py"
LABELS = ("py3.11-debian", "py3.13-trixie", "py3.12")
CHURN_BYTES = 256 * 1024
LINE = re.compile(r"^(.+) (\d+)$")


def site_frame(s):
    """A site as collapsed writes its innermost frame."""
    if s.get("function") == "<no Python frame>":
        return "[no Python frame]"
    return frame_text(s)


def frame_text(f):
    clean = lambda v: re.sub(r"[\x00-\x1f\x7f]", "?", str(v)).replace(";", ",")
    return "%s (%s:%d)" % (clean(f["function"]), clean(f["file"]), f["line"])


def collapsed(label, trace, name, *args):
    """{stack text: value} or None (after a FAIL)."""
    r = h.pyprof("report", trace, "--format", "collapsed", *args)
    if not h.check(r.rc == 0, "%s %s: exits 0" % (label, name), h.tail(r.err)):
        return None
    try:
        text = r.stdout.decode("utf-8")
    except UnicodeDecodeError as e:
        h.check(False, "%s %s: valid UTF-8" % (label, name), e)
        return None
    out, bad, dup = {}, [], []
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or int(m.group(2)) <= 0:
            bad.append(line)
            continue
        if m.group(1) in out:
            dup.append(m.group(1))
        out[m.group(1)] = int(m.group(2))
    h.check(not bad and not dup, "%s %s: one 'stack N' line per stack" % (label, name),
            "bad: %s; twice: %s" % (bad[:3], dup[:3]))
    return out


def by_site(lines):
    sums = {}
    for stack, v in lines.items():
        inner = stack.split(";")[-1]
        sums[inner] = sums.get(inner, 0) + v
    return sums


def check_heap(label, rep, trace, key, by):
    name = "collapsed --by %s" % by
    lines = collapsed(label, trace, name, "--by", by)
    if lines is None:
        return None
    sums = by_site(lines)
    want = {site_frame(s): s[key] for s in rep["sites"] if s[key] > 0}
    wrong = [(k, sums.get(k, 0), v) for k, v in want.items() if sums.get(k, 0) != v]
    extra = [k for k in sums if k not in want]
    h.check(not wrong and not extra,
            "%s %s: lines per innermost frame sum to the JSON sites' %s" % (label, name, key),
            "%d sites differ, e.g. %s; lines of no site: %s" % (len(wrong), wrong[:3], extra[:3]))
    h.check(sum(lines.values()) == sum(want.values()),
            "%s %s: total equals the sites' total" % (label, name),
            "%d vs %d" % (sum(lines.values()), sum(want.values())))
    if key == "live_bytes":
        missing = []
        for s in rep["sites"]:
            if s["live_bytes"] > 0 and s.get("stack"):
                text = ";".join(frame_text(f) for f in reversed(s["stack"]))
                if not (0 < lines.get(text, 0) <= s["live_bytes"]):
                    missing.append((text[-120:], lines.get(text), s["live_bytes"]))
        h.check(not missing, "%s %s: each site's JSON stack is one of its lines" % (label, name),
                missing[:3])
    return lines


def chrome(label, trace, name, *args):
    r = h.pyprof("report", trace, "--format", "chrome", *args)
    if not h.check(r.rc == 0, "%s %s: exits 0" % (label, name), h.tail(r.err)):
        return None
    try:
        d = json.loads(r.stdout.decode("utf-8"))
    except ValueError as e:
        h.check(False, "%s %s: valid UTF-8 JSON" % (label, name), "%s: %s" % (e, h.tail(r.out)))
        return None
    ok = (isinstance(d, dict) and isinstance(d.get("traceEvents"), list)
          and d.get("displayTimeUnit") in ("ms", "ns"))
    h.check(ok, "%s %s: {traceEvents: [...], displayTimeUnit}" % (label, name), str(d)[:200])
    return d["traceEvents"] if ok else None


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_chrome(label, rep, trace):
    ev = chrome(label, trace, "chrome")
    if ev is None:
        return
    bad = [e for e in ev if e.get("ph") not in ("M", "X", "C") or not num(e.get("ts"))
           or not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int)
           or not isinstance(e.get("name"), str)]
    h.check(not bad, "%s chrome: every event has ph (M/X/C), name, ts, pid, tid" % label, bad[:3])
    xs = [e for e in ev if e.get("ph") == "X"]
    h.check(xs and all(num(e.get("dur")) and e["dur"] >= 0 for e in xs),
            "%s chrome: X events have dur >= 0" % label, "%d X events" % len(xs))
    last, order = {}, []
    for e in xs:
        if e["ts"] < last.get(e["tid"], -1):
            order.append(e)
        last[e["tid"]] = e["ts"]
    h.check(not order, "%s chrome: X events in time order per thread" % label, order[:3])
    end_us = rep["duration_s"] * 1e6 + 1e5
    h.check(all(0 <= e["ts"] and e["ts"] + e.get("dur", 0) <= end_us for e in ev if e["ph"] != "M"),
            "%s chrome: times are microseconds inside the recording" % label,
            "recording %.0f us" % end_us)
    for g in rep["gc"]["generations"]:
        n = sum(1 for e in xs if e.get("cat") == "gc"
                and e.get("args", {}).get("generation") == g["generation"])
        h.check(n == g["collections"],
                "%s chrome: GC gen %d slices = the report's collections" % (label, g["generation"]),
                "%d slices, %d collections" % (n, g["collections"]))
    h.check(sum(g["collections"] for g in rep["gc"]["generations"]) > 0,
            "%s chrome: the run had collections to show" % label)
    for cname, key in (("heap", "live_bytes"), ("rss", "rss_bytes")):
        cs = {round(e["ts"]): e["args"] for e in ev if e["ph"] == "C" and e["name"] == cname}
        tl = rep["heap"]["timeline"]
        wrong = [p for p in tl if cs.get(round(p["t"] * 1e6), {}).get(key) != p[key]]
        # the report rounds t to ms: match within that
        wrong = [p for p in wrong if not any(abs(t - p["t"] * 1e6) <= 500 and a.get(key) == p[key]
                                             for t, a in cs.items())]
        h.check(cs and tl and not wrong,
                "%s chrome: %s counters at the timeline's t * 1e6 with its %s" % (label, cname, key),
                "%d counters, %d points, unmatched %s" % (len(cs), len(tl), wrong[:2]))
    check_nesting(label, xs)
    named = {e["tid"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    procs = [e for e in ev if e["ph"] == "M" and e["name"] == "process_name"]
    h.check(procs and {e["tid"] for e in xs} <= named,
            "%s chrome: process and threads named" % label,
            "unnamed tids %s" % ({e["tid"] for e in xs} - named))
    return xs


def check_nesting(label, xs):
    bad, open_ = [], {}
    for e in xs:
        stack = open_.setdefault(e["tid"], [])
        start, end = e["ts"], e["ts"] + e["dur"]
        while stack and stack[-1][0] <= start + 0.001:  # ts + dur rounds
            stack.pop()
        if stack and end > stack[-1][0] + 0.001:
            bad.append((stack[-1][1], e["name"], e["ts"]))
        stack.append((end, e["name"]))
    h.check(not bad, "%s chrome: slices on a thread nest" % label,
            "%d partial overlaps, e.g. %s" % (len(bad), bad[:3]))


def check_locks(label, py):
    rec = h.record(py, "stalls_lock.py")
    if not h.check(rec.report is not None, "%s stalls_lock.py: recorded and reported" % label,
                   rec.why):
        return
    rep = rec.report
    lines = collapsed(label, rec.trace, "collapsed --by locks", "--by", "locks")
    groups = rep.get("locks", []) + rep.get("waits", [])
    want = sum(l["wait_s"] for l in groups) * 1e6
    if lines is not None:
        got = sum(lines.values())
        h.check(want > 0 and abs(got - want) <= len(lines) + 0.5 + 1e-6 * want,
                "%s collapsed --by locks: sums to the report's lock waits" % label,
                "%d us vs %.0f us" % (got, want))
    ev = chrome(label, rec.trace, "chrome (locks)")
    if ev is not None:
        n = sum(1 for e in ev if e.get("cat") == "lock")
        h.check(n == sum(l["contentions"] for l in groups),
                "%s chrome: one lock slice per contention" % label,
                "%d slices, %d contentions" % (n, sum(l["contentions"] for l in groups)))
        check_nesting(label + " (locks)", [e for e in ev if e["ph"] == "X"])


def check_windows(label, rep, trace, full_alloc, gc_full):
    dur = rep["duration_s"]
    mid = "%.3f" % (dur / 2)
    a = collapsed(label, trace, "collapsed --by alloc --to T", "--by", "alloc", "--to", mid)
    b = collapsed(label, trace, "collapsed --by alloc --from T", "--by", "alloc", "--from", mid)
    if a is not None and b is not None and full_alloc is not None:
        joined = dict(a)
        for k, v in b.items():
            joined[k] = joined.get(k, 0) + v
        diff = [(k[-100:], joined.get(k), full_alloc.get(k))
                for k in set(joined) | set(full_alloc) if joined.get(k) != full_alloc.get(k)]
        h.check(not diff and a and b,
                "%s collapsed --by alloc: [0, T] + [T, end] = the whole run, per stack" % label,
                "%d stacks differ: %s" % (len(diff), diff[:3]))
    win = collapsed(label, trace, "collapsed --from 1 --to 2", "--from", "1", "--to", "2")
    wal = collapsed(label, trace, "collapsed --by alloc --from 1 --to 2",
                    "--by", "alloc", "--from", "1", "--to", "2")
    if win is not None and wal is not None:
        grown, alloc = by_site(win), by_site(wal)
        leak = h.marker_site(W, "LEAK-CACHE")
        churn = h.marker_site(W, "CHURN")
        key = lambda s: "%s (%s:%d)" % (s[2], s[0], s[1])
        h.check(grown.get(key(leak), 0) > 0,
                "%s collapsed --from 1 --to 2: LEAK-CACHE kept bytes from the window" % label,
                "%s not among %s" % (key(leak), sorted(grown)[:5]))
        h.check(grown.get(key(churn), 0) <= CHURN_BYTES * 1.1
                and alloc.get(key(churn), 0) >= 4 * CHURN_BYTES,
                "%s collapsed --from 1 --to 2: CHURN allocated much, kept at most one buffer"
                % label, "grew %s, allocated %s" % (grown.get(key(churn)), alloc.get(key(churn))))
        h.check(sum(win.values()) < rep["heap"]["live_bytes"],
                "%s collapsed --from 1 --to 2: less than the whole run's live bytes" % label,
                "%d vs %d" % (sum(win.values()), rep["heap"]["live_bytes"]))
    gcs = 0
    for lo, hi in (("0", mid), (mid, "%.3f" % (dur + 1))):
        ev = chrome(label, trace, "chrome --from %s --to %s" % (lo, hi), "--from", lo, "--to", hi)
        if ev is None:
            return
        out = [e for e in ev if e["ph"] != "M" and not (
            float(lo) * 1e6 - 1 <= e["ts"] and e["ts"] + e.get("dur", 0) <= float(hi) * 1e6 + 1)]
        h.check(not out, "%s chrome --from %s --to %s: every event inside" % (label, lo, hi), out[:3])
        gcs += sum(1 for e in ev if e.get("cat") == "gc")
    h.check(gc_full <= gcs <= gc_full + 1,
            "%s chrome: GC slices of [0, T] and [T, end] = the run's" % label,
            "%d vs %d" % (gcs, gc_full))


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        if label not in LABELS:
            continue
        rec = h.record(py, W, ["--seconds", "3"])
        if not h.check(rec.report is not None, "%s %s: recorded and reported" % (label, W), rec.why):
            continue
        rep = rec.report
        check_heap(label, rep, rec.trace, "live_bytes", "live")
        full_alloc = check_heap(label, rep, rec.trace, "alloc_bytes", "alloc")
        xs = check_chrome(label, rep, rec.trace)
        gc_full = sum(1 for e in xs or [] if e.get("cat") == "gc")
        check_windows(label, rep, rec.trace, full_alloc, gc_full)
        for by in ("gil", "locks"):
            r = h.pyprof("report", rec.trace, "--format", "collapsed", "--by", by)
            h.check(r.rc == 0 and all(LINE.match(l) for l in r.out.splitlines()),
                    "%s collapsed --by %s: exits 0, 'stack N' lines" % (label, by),
                    h.tail(r.err + r.out))
        if label == LABELS[0]:
            check_locks(label, py)
    r = h.pyprof("report", "/nonexistent", "--format", "collapsed", "--from", "3", "--to", "1")
    h.check(r.rc == 2, "report --from 3 --to 1: a usage error", "rc %s" % r.rc)
    h.done()


main()
