"""--native: native (C) frames next to the Python ones, on exact.py.

The README: "with --native, the native frames down to the interpreter loop
come first". The allocator's own frames (malloc, PyObject_Malloc...) are
not shown; the innermost native frame is the C function that asked for the
block: for b"\\0" * N that is bytes_repeat (Objects/bytesobject.c), named
on the pyenv builds (full symbol tables); on the stripped Debian builds only
exported functions have names, so there it may be an unnamed address.

Asserts, per interpreter:
- with --native the site at EXACT-1MIB still counts exactly 23 blocks;
- its stack starts with native frames: the allocating C function
  (bytes_repeat, or an allocator function if pyprof shows those; any native
  frame on the stripped build), then _PyEval_EvalFrameDefault; on Debian's
  stripped builds the loop that runs may be an unexported copy (3.14 and
  3.15 run it in an LTO clone, shown as an address), so there the frames
  must reach the exported entry, PyEval_EvalCode, or the loop's name;
- then the Python frames: allocate (the marked line), main, <module>; the
  site is the innermost Python frame.
"""
import re
import sys

import harness as h

W = "exact.py"
ALLOCATING = re.compile(r"bytes_repeat|_PyBytes_FromSize|PyBytes_FromStringAndSize|[Mm]alloc")
EVAL = "_PyEval_EvalFrameDefault"
EVAL_STRIPPED = (EVAL, "PyEval_EvalCode")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def show(stack):
    return [(fr.get("function"), fr.get("line")) for fr in stack[:14]]


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

    py_i = next((i for i, fr in enumerate(stack) if not h.is_native(fr)), len(stack))
    native = stack[:py_i]
    names = [str(fr.get("function")) for fr in native]
    if label in h.STRIPPED:
        want, ok = "a native frame", bool(native)
    else:
        want, ok = "bytes_repeat", bool(native) and bool(ALLOCATING.search(names[0]))
    h.check(ok, "%s: innermost frame is native (%s)" % (t, want), why or "stack %s" % show(stack))
    evals = EVAL_STRIPPED if label in h.STRIPPED else (EVAL,)
    h.check(any(e in names for e in evals),
            "%s: native frames reach %s before the Python frames" % (t, " or ".join(evals)),
            why or "native frames %s" % names)
    late = [i for i, fr in enumerate(stack) if i > py_i and h.is_native(fr)]
    h.check(not late, t + ": no native frame among the Python frames (README: native first)",
            why or "stack %s" % show(stack))
    pyframes = [h.frame_key(fr) for fr in stack[py_i:]]
    pyfuncs = [k[2] for k in pyframes]
    h.check(pyframes[:1] == [(f, ln, fn)] and pyfuncs == [fn, "main", "<module>"]
            and h.frame_key(s) == (f, ln, fn),
            "%s: Python frames %s:%d %s, main, <module>; the site is the first" % (t, W, ln, fn),
            why or "site %s, python frames %s" % (h.frame_key(s), pyframes[:5]))


if __name__ == "__main__":
    sys.exit(main())
