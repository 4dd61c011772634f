"""File:line:function where line tables and frames are awkward (lines.py).

Per interpreter, for each marked line of tests/workloads/lines.py: one site
at that exact absolute file and line, with the expected function and
exactly the blocks the line keeps alive (live_count), and the site's stack
starts with the site. Cases: a 300-line jump in a function, a line after
EXTENDED_ARG-heavy bytecode, the bottom of a 400-deep recursion (deeper
than a stack record: the innermost frame must still be the site), a
generator, a coroutine, a list comprehension (<listcomp> before 3.12, comp
itself from 3.12: PEP 709), a class body, module level.
"""
import sys

import harness as h

W = "lines.py"
N_BYTES = 4096  # lines.py's N: each case keeps bytes objects of N
BYTES_HEAD = 33  # PyBytesObject header and NUL (Include/cpython/bytesobject.h)
# marker -> (function, live_count); None = depends on the version (below)
CASES = {
    "LINE-FAR": ("far", 1),
    "LINE-EXTARG": ("far", 1),
    "LINE-DEEP": ("deep", 1),
    "LINE-GEN": ("gen", 1),
    "LINE-CORO": ("coro", 1),
    "LINE-COMP": (None, 3),
    "LINE-CLASS": ("K", 1),
    "LINE-MODULE": ("<module>", 1),
}


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s lines" % label
    ver = tuple(int(x) for x in h.python_version(py).split(".")[:2])
    r = h.record(py, W)
    h.check(r.rc == 0 and "lines: 8 blocks" in r.out, t + ": exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    for mk, (fn, live) in CASES.items():
        f, ln, _ = h.marker_site(W, mk)
        if fn is None:
            fn = "<listcomp>" if ver < (3, 12) else "comp"
        here = h.sites_at((r.report or {}).get("sites"), f, ln)
        site = next((s for s in here if s.get("function") == fn), None)
        why = ("no report: %s" % r.why if r.report is None else
               "sites at %s:%d: %s" % (W, ln, [h.fmt_site(s) for s in here]))
        got = (site or {}).get("live_count")
        ok = got == live
        if mk == "LINE-COMP" and ver >= (3, 13) and got in (live + 1, live + 2):
            # 3.13+ keeps freelists (the reference tracer retags what
            # they hand out): the comprehension's own list object and,
            # 3.14+, its range iterator, once dropped, wait on their
            # freelists still charged to this line until a new one takes
            # them, as under tracemalloc (README, "Freelists"), whether
            # their block was first made before the hooks or after. Small
            # objects, two at most.
            lb = site.get("live_bytes") or 0
            ok = 0 < lb - 3 * (N_BYTES + BYTES_HEAD) <= 64 * (got - live)
        h.check(site is not None and ok,
                "%s: %s at %s:%d in %s, live_count %d" % (t, mk, W, ln, fn, live), why)
        st = (site or {}).get("stack") or []
        h.check(site is not None and st and h.frame_key(st[0]) == (f, ln, fn),
                "%s: %s stack starts with the site" % (t, mk),
                "stack %s" % [h.frame_key(x) for x in st[:3]] if site else why)


if __name__ == "__main__":
    sys.exit(main())
