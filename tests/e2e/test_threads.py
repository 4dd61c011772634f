"""Per-thread exact counts on tests/workloads/threads.py.

Asserts, per interpreter and thread (alloc-alpha/beta/gamma/delta):
- the thread's marked line is one site, in the thread's own function, with
  alloc_count == live_count == the thread's block count and live_bytes
  within [count*size, count*(size+256)] (the delta thread's 300-byte blocks
  come from pymalloc, the others from malloc);
- the thread's Python name appears in gil.threads (the contract: a thread's
  name is threading.Thread.name);
- the text report's GIL table keeps its columns under each other in
  terminal columns, the long name (delta's, with two-column CJK
  characters) cut to the column's 32 columns with a '~'.
"""
import re
import sys
import unicodedata

import harness as h

W = "threads.py"
# name -> (marker, function, count, payload bytes): see threads.SPECS
THREADS = {
    "alloc-alpha": ("THREAD-ALPHA", 11, 65536),
    "alloc-beta": ("THREAD-BETA", 13, 98304),
    "alloc-gamma": ("THREAD-GAMMA", 17, 163840),
    "alloc-delta \u6570\u636e, a thread whose name is too long for a column \u2603":
        ("THREAD-DELTA", 19, 300),
}
HDR = 256


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s threads" % label
    r = h.record(py, W)
    h.check(r.rc == 0 and r.out.count("blocks") == len(THREADS), t + ": exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    rep = r.report
    h.check(rep is not None, t + ": report parses", r.why)
    rep = rep or {}
    names = {th.get("name") for th in (rep.get("gil") or {}).get("threads") or []}
    for name, (mk, count, size) in THREADS.items():
        f, ln, fn = h.marker_site(W, mk)
        tt = "%s %s" % (t, name)
        site, why = h.one_site(rep, f, ln) if rep else (None, "no report")
        h.check(site is not None and site.get("function") == fn,
                "%s: site %s:%d function %s" % (tt, W, ln, fn), why or h.fmt_site(site))
        s = site or {}
        h.check(s.get("alloc_count") == count and s.get("live_count") == count,
                "%s: alloc_count == live_count == %d" % (tt, count), h.fmt_site(site))
        lo, hi = count * size, count * (size + HDR)
        h.check(lo <= (s.get("live_bytes") or 0) <= hi,
                "%s: live_bytes in [%d, %d]" % (tt, lo, hi), h.fmt_site(site))
        h.check(name in names, "%s: name in gil.threads" % tt,
                "gil.threads names: %s" % sorted(str(n) for n in names))
    text_table(t, r.trace)


def cols(s):
    """Terminal columns of s (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def cut(name, w=32):
    """name as the table shows it: whole, or cut to w - 1 columns and '~'."""
    if cols(name) <= w:
        return name
    out = ""
    for c in name:
        if cols(out + c) > w - 1:
            break
        out += c
    return out + "~"


def text_table(t, trace):
    """The GIL table: in terminal columns, every row's HELD figure ends
    where the header's HELD column does, each thread shown by its name
    or, past 32 columns, its first 31 columns and a '~'."""
    rep = h.pyprof("report", trace)
    lines = rep.out.split("\n")
    hdr = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("TID  NAME")]
    h.check(rep.rc == 0 and len(hdr) == 1, t + ": text report has one GIL table",
            "rc %s; %s" % (rep.rc, h.tail(rep.out)))
    if not hdr:
        return
    head = lines[hdr[0]]
    held = cols(head[:head.index("HELD s") + len("HELD s")])
    rows = {}
    for ln in lines[hdr[0] + 1:]:
        m = re.match(r"^ +\d+  (.*?) +(\d+\.\d{3}) ", ln)
        if not m:
            break
        rows[m.group(1)] = cols(ln[:m.end(2)])
    for name in THREADS:
        want = cut(name)
        h.check(rows.get(want) == held, "%s %s: text GIL row, figures aligned" % (t, name[:11]),
                "want %r ending at column %d in rows %r" % (want, held, rows))


if __name__ == "__main__":
    sys.exit(main())
