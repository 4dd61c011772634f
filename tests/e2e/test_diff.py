"""pyprof diff A B: two traces, or two windows of one (FILE:FROM-TO).

tests/workloads/growth.py recorded exactly twice, with --leak 50 (A)
and --leak 150 (B), then:
- diff --format json: every site's a and b figures are those of the two
  JSON reports, delta_live_bytes = b - a, sites ranked by it (largest
  growth first); GROWTH comes first, grown by 100 blocks of 40 KiB;
  the totals are the reports' heap totals;
- text: the first row under "Grew most" is GROWTH, with its delta;
- collapsed: "stack A B" lines (FlameGraph's difffolded format), both
  columns integers; summed by innermost frame they are the two reports'
  live bytes per site; the json "stacks" hold the same stacks and values;
- two windows of trace B, before and across phase 2: GROWTH's delta is
  the JSON window's live bytes; BASELINE, whose quarter phase 2 freed and
  which allocated nothing since, is ranked last of the sites;
- bad input: a corrupt trace, a missing one, FROM >= TO, a window past the
  end, one side only, an unknown format: one line, non-zero status,
  no output file.
"""
import json
import os
import shutil

import harness as h

W = "growth.py"
LABEL = "py3.11-debian"
KIB = 1024
GAP = 1.5


def run_json(*args):
    r = h.pyprof(*args)
    try:
        return json.loads(r.out), r
    except ValueError:
        return None, r


def key(s):
    return (s["file"], s["line"], s["function"])


def figs(s):
    return {k: s[k] for k in ("live_bytes", "live_count", "alloc_bytes", "alloc_count")}


def check_json(d, ra, rb):
    sa = {key(s): figs(s) for s in ra["sites"]}
    sb = {key(s): figs(s) for s in rb["sites"]}
    zero = dict.fromkeys(("live_bytes", "live_count", "alloc_bytes", "alloc_count"), 0)
    wrong = []
    for s in d["sites"]:
        a = {k: s["a"][k] for k in zero}
        b = {k: s["b"][k] for k in zero}
        if a != sa.get(key(s), zero) or b != sb.get(key(s), zero) or \
                s["delta_live_bytes"] != b["live_bytes"] - a["live_bytes"]:
            wrong.append((key(s), a, sa.get(key(s)), b, sb.get(key(s))))
    missing = (set(sa) | set(sb)) - {key(s) for s in d["sites"]}
    h.check(not wrong and not missing, "diff json: a and b are the two reports' sites, "
            "delta = b - a", "%d wrong %s; missing %s" % (len(wrong), wrong[:2], list(missing)[:3]))
    deltas = [s["delta_live_bytes"] for s in d["sites"]]
    h.check(deltas == sorted(deltas, reverse=True), "diff json: sites ranked by delta_live_bytes",
            deltas[:10])
    f, line, fn = h.marker_site(W, "GROWTH")
    top = d["sites"][0] if d["sites"] else {}
    grew = top.get("delta_live_bytes", 0)
    h.check(key(top) == (f, line, fn) and 100 * 40 * KIB <= grew <= 100 * 41 * KIB,
            "diff json: GROWTH first, grown by 100 blocks of 40 KiB",
            "first %s, delta %s" % (key(top) if top else None, grew))
    tot = d["diff"]
    h.check(tot["a"]["live_bytes"] == ra["heap"]["live_bytes"]
            and tot["b"]["live_bytes"] == rb["heap"]["live_bytes"]
            and tot["delta_live_bytes"] == rb["heap"]["live_bytes"] - ra["heap"]["live_bytes"],
            "diff json: totals are the reports' heap live bytes", tot)
    return grew


def check_text(a, b, grew):
    r = h.pyprof("diff", a, b)
    f, line, fn = h.marker_site(W, "GROWTH")
    lines = r.out.splitlines()
    i = next((n for n, l in enumerate(lines) if l.startswith("Grew most")), None)
    row = lines[i + 2] if i is not None and len(lines) > i + 2 else ""
    h.check(r.rc == 0 and ("%s:%d %s" % (f, line, fn)) in row and row.split()[0].startswith("+"),
            "diff text: GROWTH is the first row under 'Grew most', with a + delta",
            h.tail(r.out[:800]))


def check_collapsed(a, b, ra, rb, d):
    r = h.pyprof("diff", a, b, "--format", "collapsed")
    cols, bad = {}, []
    for line in r.out.splitlines():
        parts = line.rsplit(" ", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or \
                (parts[1] == "0" and parts[2] == "0") or parts[0] in cols:
            bad.append(line)
            continue
        cols[parts[0]] = (int(parts[1]), int(parts[2]))
    h.check(r.rc == 0 and cols and not bad, "diff collapsed: 'stack A B' lines, integers",
            "rc %s, bad %s" % (r.rc, bad[:3]))
    for k, rep in ((0, ra), (1, rb)):
        sums = {}
        for stack, v in cols.items():
            inner = stack.split(";")[-1]
            sums[inner] = sums.get(inner, 0) + v[k]
        want = {}
        for s in rep["sites"]:
            if s["live_bytes"] > 0:
                t = ("[no Python frame]" if s["function"] == "<no Python frame>"
                     else "%s (%s:%d)" % (s["function"], s["file"], s["line"]))
                want[t] = s["live_bytes"]
        diff = [(t, sums.get(t, 0), v) for t, v in want.items() if sums.get(t, 0) != v]
        extra = [t for t in sums if sums[t] and t not in want]
        h.check(not diff and not extra,
                "diff collapsed: column %s by innermost frame = report %s's live bytes"
                % ("AB"[k], "AB"[k]), "%d differ %s; extra %s" % (len(diff), diff[:2], extra[:2]))
    js = {s["folded"]: (s["a"]["live_bytes"], s["b"]["live_bytes"]) for s in d["stacks"]
          if s["a"]["live_bytes"] or s["b"]["live_bytes"]}
    h.check(js == cols, "diff json stacks: the collapsed lines' stacks and values",
            "%d vs %d stacks" % (len(js), len(cols)))


def check_windows(trace, rep):
    t2 = h.growth_phase2_tick(rep)
    if not h.check(t2 is not None, "diff windows: phase 2 shows in B's timeline",
                   [(p["t"], p["live_bytes"]) for p in rep["heap"]["timeline"][::3]]):
        return
    mid, hi = t2 - 0.1 - GAP / 2, t2 + GAP / 2
    a, b = "%s:0-%.3f" % (trace, mid), "%s:%.3f-%.3f" % (trace, mid, hi)
    d, r = run_json("diff", a, b, "--format", "json")
    w, rw = run_json("report", trace, "--format", "json", "--from", "%.3f" % mid,
                     "--to", "%.3f" % hi)
    if not h.check(d is not None and w is not None, "diff A:0-T A:T-U: json",
                   h.tail(r.err + rw.err)):
        return
    g = h.marker_site(W, "GROWTH")
    base = h.marker_site(W, "BASELINE")
    gs = [s for s in d["sites"] if key(s) == g]
    ws = [s for s in w["sites"] if key(s) == g]
    h.check(gs and ws and gs[0]["delta_live_bytes"] == ws[0]["live_bytes"] > 97 * 40 * KIB
            and gs[0]["a"]["live_bytes"] == 0,
            "diff A:0-T A:T-U: GROWTH's delta is the window's live bytes",
            "diff %s, window %s" % (gs and gs[0]["delta_live_bytes"], ws and ws[0]["live_bytes"]))
    last = d["sites"][-1] if d["sites"] else {}
    # (file, line): 3.11 names a comprehension's own function "<listcomp>"
    h.check(key(last)[:2] == base[:2] and last["a"]["live_bytes"] >= 128 * 64 * KIB
            and last["b"]["live_bytes"] == 0 and last["b"]["growth_bytes"] <= -32 * 64 * KIB,
            "diff A:0-T A:T-U: BASELINE ranked last (8 MiB before, none allocated after, "
            "a quarter freed)", "last %s" % str(last and (key(last), last["a"], last["b"])))


def check_bad(trace):
    out = h.tmpfile("bad-diff.out")
    broken = h.tmpfile("corrupt.pyprof")
    data = bytearray(open(trace, "rb").read())
    for off in range(len(data) // 2, len(data) // 2 + 64):
        data[off] ^= 0x5a
    open(broken, "wb").write(bytes(data))
    cases = (("a corrupt trace", [trace, broken], 1),
             ("a missing trace", [trace, h.tmpfile("none.pyprof")], 1),
             ("FROM >= TO", [trace, "%s:3-1" % trace], 2),
             ("a window past the end", [trace, "%s:1000-" % trace], 2),
             ("one side only", [trace], 2),
             ("an unknown format", [trace, trace, "--format", "pprof"], 2))
    for name, args, rc in cases:
        r = h.pyprof("diff", *args, "-o", out)
        lines = [l for l in r.err.splitlines() if l.strip() and not l.startswith("Try")]
        h.check(r.rc == rc and len(lines) == 1 and not os.path.exists(out),
                "diff with %s: one line, status %d, no output" % (name, rc),
                "rc %s, stderr %s" % (r.rc, h.tail(r.err)))


def main():
    h.require_pyprof()
    py = dict(h.interpreters()).get(LABEL)
    if py is None:
        h.done()
    recs = [h.record(py, W, ["--gap", g, "--leak", n], ["--sample", "0"])
            for n, g in (("50", "0.4"), ("150", str(GAP)))]
    if not all(h.check(r.report is not None, "%s %s: recorded and reported" % (LABEL, W), r.why)
               for r in recs):
        h.done()
    (ta, ra), (tb, rb) = [(r.trace, r.report) for r in recs]
    d, r = run_json("diff", ta, tb, "--format", "json")
    if h.check(d is not None and r.rc == 0, "diff A B --format json: JSON, status 0",
               h.tail(r.err + r.out)):
        grew = check_json(d, ra, rb)
        check_text(ta, tb, grew)
        check_collapsed(ta, tb, ra, rb, d)
    check_windows(tb, rb)
    check_bad(ta)
    h.done()


main()
