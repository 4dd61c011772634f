"""Growth by importing modules is not a leak (README, "What counts as a
leak"), per interpreter, recording every allocation and sampled.

`imports.py` imports one more generated module every 8 ms for 2 s (the
modules' data, classes and functions, compiled and run by importlib) and
keeps 16 KiB per request in a global list (LEAK-REAL). Asserts:
- LEAK-REAL is flagged, with no share of import in it;
- no leak is under the import system: no flagged site's stack has a
  `<frozen importlib...>` frame, and none is in a generated module;
- recording every allocation, the sites that grew as a leak does while
  importing (importlib's own `_new_module`, `spec_from_file_location`,
  ...) are told apart: `grew_by_import` true, `import_share` above one
  half and their stack under importlib; the text report and the viewer's
  Leaks view say how many in one line.
"""
import re

import harness as h

W = "imports.py"
SAMPLE = 65536


def under_import(site):
    return any(str(f.get("file", "")).startswith("<frozen importlib")
               for f in site.get("stack") or [])


def one(label, py, sample):
    t = "%s imports%s" % (label, " --sample %d" % sample if sample else "")
    r = h.record(py, W, ["2"], ["--sample", str(sample)])
    rep = r.report
    if not h.check(r.rc == 0 and rep is not None, t + ": recorded and reported",
                   "rc %s; %s" % (r.rc, r.why)):
        return
    m = re.search(r"imported (\d+)", r.out)
    leaks = rep.get("leaks") or []
    print("# %s: %s modules imported, %d leaks" % (t, m.group(1) if m else "?", len(leaks)))
    f, ln, fn = h.marker_site(W, "LEAK-REAL")
    hits = h.sites_at(leaks, f, ln)
    site, why = h.one_site(rep, f, ln)
    h.check(len(hits) == 1 and hits[0].get("function") == fn and
            hits[0].get("import_share") == 0 and not hits[0].get("grew_by_import"),
            t + ": the real leak is flagged at %s:%d" % (W, ln),
            why or h.fmt_site(site))
    bad = [(s.get("file"), s.get("line"), s.get("function")) for s in leaks
           if under_import(s) or "pp-imports-" in str(s.get("file"))]
    h.check(not bad, t + ": no leak under the import system", "flagged: %s" % bad)
    if sample:
        return
    told = [s for s in rep.get("sites") or [] if s.get("grew_by_import")]
    wrong = [(s.get("file"), s.get("line"), s.get("import_share")) for s in told
             if s.get("leak") or s.get("import_share", 0) < 0.5 or not under_import(s)]
    h.check(len(told) >= 3 and not wrong,
            t + ": the import growth is told apart (%d sites)" % len(told),
            "wrong: %s; told: %s" % (wrong, [(s.get("file"), s.get("line")) for s in told]))
    txt = h.pyprof("report", r.trace)
    m = re.search(r"not leaks: (\d+) sites? that grew by importing modules", txt.out)
    h.check(txt.rc == 0 and m and int(m.group(1)) == len(told),
            t + ": the text report says how many sites grew by importing",
            h.tail(txt.out, 900))
    vw = h.pyprof("view", r.trace, "-b", "-n", "1", "-d", "100")  # the end
    m = re.search(r"not leaks: (\d+) sites? that grew by importing modules", vw.out)
    h.check(vw.rc == 0 and m and int(m.group(1)) == len(told),
            t + ": the viewer's Leaks view says it too", h.tail(vw.out, 900))


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py, 0)
        one(label, py, SAMPLE)
    h.done()


main()
