"""A --native trace reports the same once the recorded binaries are gone.

Native frames the shim can only name by offset (static functions such as
bytes_repeat: dladdr sees the dynamic symbols only) are named from the
library's full symbol table. That happens at record time, so the trace
is self-contained: `pyprof report` on another machine, where the files
are missing or different, gives the same report.

Per interpreter built with symbols (tests/interpreters: pyenv's shared
libpython with a full symbol table; the stripped Debian builds have no
table whose loss would show): libpython
is copied to a temporary directory and the interpreter runs with it
(LD_LIBRARY_PATH wins over its RUNPATH); exact.py is recorded with
--native and reported; the copy is deleted and the trace reported again.

Asserts, per interpreter:
- the native frames name the copied libpython (the run used the copy);
- the innermost frame of the EXACT-1MIB site is a named C function
  (bytes_repeat or an allocator function), not a "+0x" offset;
- the report after the copy is gone is the same JSON, byte for byte.
"""
import os
import re
import shutil
import sys

import harness as h

W = "exact.py"
ALLOCATING = re.compile(r"bytes_repeat|_PyBytes_FromSize|PyBytes_FromStringAndSize|[Mm]alloc")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        if label not in h.STRIPPED:
            one(label, py)
    h.done()


def libpython(py):
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(py)))
    lib = os.path.join(prefix, "lib")
    names = [n for n in os.listdir(lib) if re.fullmatch(r"libpython3\.\d+\.so\.1\.0", n)]
    return os.path.join(lib, names[0]) if names else None


def one(label, py):
    t = "%s native elsewhere" % label
    lib = libpython(py)
    if not h.check(lib is not None, t + ": the interpreter has a shared libpython",
                   "no libpython3.X.so.1.0 next to %s" % py):
        return
    moved = h.tmpfile("lib-" + label)
    os.makedirs(moved, exist_ok=True)
    copy = shutil.copy(lib, moved)
    f, ln, _ = h.marker_site(W, "EXACT-1MIB")
    r = h.record(py, W, extra_pyprof_args=["--native"], env={"LD_LIBRARY_PATH": moved})
    os.unlink(copy)
    first = r.report_run.stdout if r.report_run else b""
    h.check(r.rc == 0 and r.report is not None, t + ": records and reports",
            "rc %s; %s" % (r.rc, r.why))
    if r.report is None:
        return
    site, why = h.one_site(r.report, f, ln)
    stack = (site or {}).get("stack") or []
    native = [fr for fr in stack if h.is_native(fr)]
    h.check(any(fr.get("file") == copy for fr in native),
            t + ": native frames are in the copied libpython",
            why or "native frame files %s" % sorted({fr.get("file") for fr in native}))
    name = str(native[0].get("function")) if native else ""
    h.check(bool(ALLOCATING.search(name)), t + ": innermost frame is named (%s)" % name,
            why or "native frames %s" % [fr.get("function") for fr in native[:6]])

    again = h.pyprof("report", r.trace, "--format", "json")
    h.check(again.rc == 0 and again.stdout == first,
            t + ": the same report once the recorded libpython is gone",
            "rc %s; first differing line: %s" % (again.rc, first_diff(first, again.stdout)))


def first_diff(a, b):
    for x, y in zip(a.split(b"\n"), b.split(b"\n")):
        if x != y:
            return "%s | %s" % (h.tail(x.decode(errors="replace"), 200),
                                h.tail(y.decode(errors="replace"), 200))
    return "lengths %d, %d" % (len(a), len(b))


if __name__ == "__main__":
    sys.exit(main())
