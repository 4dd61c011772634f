"""The viewer's batch mode (-b -n N -d SEC), live and over a trace, as text.

Per interpreter (python3.11 from Debian, static and embedded through\nDebian's shared libpython3.11):
- `pyprof -b -n 3 -d 0.8 -- python service.py` prints exactly 3 frames,
  every line within 80 columns, each with the header fields, the graph and
  the Sites, Leaks, GC and Threads & locks sections; exit status 0;
- without -n, frames come until the command ends, and the last one (the
  end of the run) lists the cache leak in Leaks;
- the command's exit status passes through (7 from exitcode.py);
- `pyprof view TRACE -b -n 2 -d 1` prints 2 frames at 1 s and 2 s; without
  -n it goes to the end of the trace, where the cache leak is in Leaks;
- PYPROF_COLUMNS widens the frames;
- without -b and without a terminal, stdout carries only the command's
  output and the text report goes to stderr;
- names past ASCII (unicode_names.py: a function répartir, a function
  数据 whose characters are two columns wide, a thread
  "ouvrière-☃-数据-longue"): shown as they are, not as '?', at their
  lines; the thread's name cut to its 14 columns with a '~'; the rows'
  figures under each other counted in terminal columns.
"""
import os
import re
import sys
import unicodedata

import harness as h

W = "service.py"
PYS = [("py3.11-debian", "/usr/bin/python3.11"),
       ("py3.11-embed", h.interpreter_path("py3.11-embed"))]
CACHE = "service.py:%d" % h.line_of(W, "LEAK-CACHE")
FRAME = re.compile(r"^=== pyprof frame (\d+)(?:/(\d+))? =+$", re.M)


def frames(out):
    """[(number, text)] of the frames in out."""
    marks = list(FRAME.finditer(out))
    res = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(out)
        res.append((int(m.group(1)), out[m.start():end]))
    return res


def section(frame, title):
    """The lines of one section of a frame (up to the next blank line)."""
    m = re.search(r"^%s\b.*?(?=\n\n|\Z)" % re.escape(title), frame, re.M | re.S)
    return m.group(0) if m else ""


def frame_checks(t, fr):
    h.check(re.search(r"pid \d+  Python 3\.\d+\.\d+", fr) is not None,
            t + ": header names pid and Python", fr[:300])
    h.check(re.search(r"^Heap [\d.]+ [KMG]?i?B.*RSS [\d.]+ [KMG]?i?B.*Alloc ", fr, re.M),
            t + ": header has heap, RSS, allocation rate", fr[:300])
    h.check(re.search(r"^GC .*GIL wait .*Events \S+\s+Drops \d+", fr, re.M),
            t + ": header has GC, GIL, events, drops", fr[:400])
    h.check("# heap" in fr and re.search(r"\|[ .#]*#", fr) is not None,
            t + ": heap graph", fr[:600])
    for title in ("Sites (", "Leaks (", "GC", "Threads & locks"):
        h.check(re.search(r"^%s" % re.escape(title), fr, re.M) is not None,
                t + ": section %s" % title.strip(" ("), fr[:200])


def live(label, py):
    t = "%s batch live" % label
    r = h.pyprof("-b", "-n", "3", "-d", "0.8", "--", py, h.workload_path(W), "--seconds", "4")
    h.check(r.rc == 0, t + ": exit 0", "rc %s; %s" % (r.rc, h.tail(r.err)))
    fs = frames(r.out)
    h.check([n for n, _ in fs] == [1, 2, 3], t + ": exactly 3 frames, numbered",
            "frames %s; %s" % ([n for n, _ in fs], h.tail(r.out)))
    wide = [line for line in r.out.splitlines() if len(line) > 80]
    h.check(not wide, t + ": every line within 80 columns", wide[:3])
    if fs:
        frame_checks(t, fs[-1][1])
        h.check(CACHE in section(fs[-1][1], "Sites ("), t + ": Sites lists " + CACHE,
                section(fs[-1][1], "Sites ("))

    t = "%s batch live to the end" % label
    r = h.pyprof("-b", "-d", "1", "--", py, h.workload_path(W), "--seconds", "3")
    fs = frames(r.out)
    h.check(r.rc == 0 and len(fs) >= 3, t + ": frames until the command ends",
            "rc %s; %d frames; %s" % (r.rc, len(fs), h.tail(r.err)))
    if fs:
        leaks = section(fs[-1][1], "Leaks (")
        h.check(CACHE in leaks, t + ": the last frame's Leaks lists " + CACHE, leaks)
        h.check("service: " in r.out and "requests" in r.out,
                t + ": the command's output is there too", h.tail(r.out))

    t = "%s batch live" % label
    r = h.pyprof("-b", "-n", "1", "-d", "0.5", "--", py, h.workload_path("exitcode.py"),
                 stdin=b"")
    h.check(r.rc == 7, t + ": the command's exit status (7) passes through",
            "rc %s; %s" % (r.rc, h.tail(r.err)))

    t = "%s no terminal" % label
    r = h.pyprof("--", py, h.workload_path(W), "--seconds", "2")
    h.check(r.rc == 0 and not FRAME.search(r.out) and
            re.search(r"^service: \d+ requests", r.out, re.M),
            t + ": stdout has only the command's output", h.tail(r.out))
    h.check(CACHE in r.err, t + ": the text report goes to stderr", h.tail(r.err))


def replay(label, py):
    t = "%s batch replay" % label
    rec = h.record(py, W, ["--seconds", "4"])
    if not h.check(rec.rc == 0 and os.path.exists(rec.trace), t + ": recorded a trace",
                   "rc %s; %s" % (rec.rc, h.tail(rec.err))):
        return
    r = h.pyprof("view", rec.trace, "-b", "-n", "2", "-d", "1")
    fs = frames(r.out)
    h.check(r.rc == 0 and [n for n, _ in fs] == [1, 2], t + ": -n 2 gives 2 frames",
            "rc %s; frames %s; %s" % (r.rc, [n for n, _ in fs], h.tail(r.err)))
    at = [re.search(r"\bat ([\d.]+)s/", f) for _, f in fs]
    h.check(all(at) and [round(float(m.group(1))) for m in at] == [1, 2],
            t + ": frames at 1 s and 2 s of the trace",
            [m.group(0) if m else None for m in at])
    wide = [line for line in r.out.splitlines() if len(line) > 80]
    h.check(not wide, t + ": every line within 80 columns", wide[:3])
    if fs:
        frame_checks(t, fs[0][1])

    r = h.pyprof("view", rec.trace, "-b", "-d", "1")
    fs = frames(r.out)
    h.check(r.rc == 0 and len(fs) >= 4, t + ": without -n, frames to the end",
            "rc %s; %d frames" % (r.rc, len(fs)))
    if fs:
        last = fs[-1][1]
        m = re.search(r"\bat ([\d.]+)s/([\d.]+)s", last)
        h.check(m and m.group(1) == m.group(2), t + ": the last frame is at the end",
                m.group(0) if m else last[:200])
        h.check(CACHE in section(last, "Leaks ("), t + ": at the end Leaks lists " + CACHE,
                section(last, "Leaks ("))

    env = dict(os.environ, PYPROF_COLUMNS="120")
    r = h.pyprof("view", rec.trace, "-b", "-n", "1", "-d", "3", env=env)
    longest = max((len(line) for line in r.out.splitlines()), default=0)
    h.check(r.rc == 0 and 80 < longest <= 120, t + ": PYPROF_COLUMNS=120 widens frames",
            "longest line %d" % longest)


def cols(s):
    """Terminal columns of s (East Asian wide ones take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def unicode_names(label, py):
    t = "%s viewer batch, names past ASCII" % label
    u = "unicode_names.py"
    rec = h.record(py, u)
    if not h.check(rec.rc == 0 and os.path.exists(rec.trace), t + ": recorded a trace",
                   "rc %s; %s" % (rec.rc, h.tail(rec.err))):
        return
    r = h.pyprof("view", rec.trace, "-b", "-n", "1")
    out = r.out
    for mark, fn in (("UNI-FR", "répartir"), ("UNI-ZH", "数据")):
        want = "%s:%d %s" % (u, h.line_of(u, mark), fn)
        h.check(want in out, "%s: site %s shown" % (t, want), h.tail(out, 1500))
    h.check("?" not in section(out, "Sites") and "\ufffd" not in out,
            t + ": no '?' or U+FFFD in place of a character", section(out, "Sites")[:600])
    rows = [ln for ln in out.splitlines() if re.match(r"^ +\d+ ", ln) and "%" in ln
            and "[" in ln]
    mine = [ln for ln in rows if "ouvrière-☃-数~" in ln]
    main_row = [ln for ln in rows if "MainThread" in ln]
    h.check(len(mine) == 1 and len(main_row) == 1 and
            cols(mine[0][:mine[0].index("%")]) == cols(main_row[0][:main_row[0].index("%")]),
            t + ": thread name cut to 14 columns with '~', WAIT% under MainThread's",
            "%r %r" % (mine, main_row))
    wide = [ln for ln in out.splitlines() if cols(ln) > 80]
    h.check(r.rc == 0 and not wide, t + ": every line within 80 columns", wide[:3])


def main():
    h.require_pyprof()
    for label, py in PYS:
        if not h.check(os.access(py, os.X_OK), "%s viewer batch: interpreter present" % label,
                       py):
            continue
        live(label, py)
        replay(label, py)
        unicode_names(label, py)
    h.done()


if __name__ == "__main__":
    sys.exit(main())
