"""--native: native (C) frames next to the Python ones, on exact.py.

Asserts, per interpreter:
- with --native the site at EXACT-1MIB still counts exactly 23 blocks;
- its stack holds a native frame of the allocator (a function whose name
  contains "malloc" or "Malloc": malloc, PyObject_Malloc, _PyObject_Malloc,
  PyMem_RawMalloc..., resolved through .dynsym on the stripped Debian build);
- its stack holds the marked Python frame (exact.py:LINE in allocate) and the
  Python callers (main, <module>), and the allocator frame comes before
  (is inner to) the Python frame;
- the Python frames of the stack, in order, start with the site itself.
"""
import re
import sys

import harness as h

W = "exact.py"
ALLOCATOR = re.compile(r"malloc|Malloc|calloc|Calloc")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def show(stack):
    return [(fr.get("function"), fr.get("file"), fr.get("line")) for fr in stack[:14]]


def one(label, py):
    t = "%s native" % label
    f, ln, fn = h.marker_site(W, "EXACT-1MIB")
    r = h.record(py, W, extra_pyprof_args=["--native"])
    h.check(r.rc == 0, t + ": exits 0 under --native", "rc %s; stderr %s" % (r.rc, h.tail(r.err)))
    rep = r.report
    site, why = h.one_site(rep, f, ln) if rep else (None, "no report: %s" % r.why)
    s = site or {}
    stack = s.get("stack") or []
    h.check(s.get("alloc_count") == 23 and s.get("live_count") == 23,
            "%s: site %s:%d still counts 23" % (t, W, ln), why or h.fmt_site(site))
    alloc_i = next((i for i, fr in enumerate(stack)
                    if h.is_native(fr) and ALLOCATOR.search(str(fr.get("function")))), None)
    py_i = next((i for i, fr in enumerate(stack) if h.frame_key(fr) == (f, ln, fn)), None)
    h.check(alloc_i is not None, t + ": stack has a native allocator frame",
            why or "stack %s" % show(stack))
    pyfuncs = [fr.get("function") for fr in stack if not h.is_native(fr)]
    h.check(py_i is not None and pyfuncs[-3:] == [fn, "main", "<module>"],
            t + ": stack has the Python frames %s, main, <module>" % fn,
            why or "python frames %s; stack %s" % (pyfuncs, show(stack)))
    h.check(alloc_i is not None and py_i is not None and alloc_i < py_i,
            t + ": allocator frame is inner to the Python frame",
            why or "allocator at %s, python frame at %s: %s" % (alloc_i, py_i, show(stack)))
    pyframes = [h.frame_key(fr) for fr in stack if not h.is_native(fr)]
    h.check(pyframes[:1] == [(f, ln, fn)] and h.frame_key(s) == (f, ln, fn),
            t + ": site is the innermost Python frame",
            why or "site %s, python frames %s" % (h.frame_key(s), pyframes[:4]))


if __name__ == "__main__":
    sys.exit(main())
