"""Recorded stacks equal the truth where a stack cache could go stale
(stack_truth.py).

The shim keeps each thread's last chain of frames and reuses the hash of
the part that matches it from the outer end; CPython reuses a frame's
memory for the next call and a code object's address for the next code
object. stack_truth.py allocates one block per site visit, sized per
stack, and prints every stack (function, file, line) as the interpreter
itself saw it (sys._getframe). Per interpreter, recording every
allocation, the collapsed export (--by alloc) must hold each of those
stacks with exactly count * (size + header) bytes, and no other stack
may end at a site line (a stale outer frame would make one).
"""
import json
import os
import re
import sys

import harness as h

W = "stack_truth.py"
FRAME = re.compile(r"^(.*) \((.*):(\d+)\)$")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def name(file):
    return os.path.basename(file)


def parse(text):
    """{tuple of (function, basename, line) innermost first: bytes}"""
    out = {}
    for line in text.splitlines():
        stack, _, value = line.rpartition(" ")
        frames = []
        for f in stack.split(";"):
            m = FRAME.match(f)
            if not m:
                frames = None
                break
            frames.append((m.group(1), name(m.group(2)), int(m.group(3))))
        if frames:
            key = tuple(reversed(frames))
            out[key] = out.get(key, 0) + int(value)
    return out


def show(key):
    return ";".join("%s:%d" % (f[1], f[2]) for f in reversed(key))


def one(label, py):
    t = "%s %s" % (label, W)
    r = h.record(py, W)
    try:
        truth = json.loads(r.out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        truth = None
    h.check(r.rc == 0 and truth is not None, t + ": exits 0, prints its stacks",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    if truth is None:
        return
    rep = h.pyprof("report", r.trace, "--format", "collapsed", "--by", "alloc")
    got = parse(rep.out)
    want = {}
    for s in truth["stacks"]:
        key = tuple((f[0], name(f[1]), f[2]) for f in s["frames"])
        want[key] = s["count"] * (s["size"] + truth["header"])
    sites = {k[0][1:] for k in want}
    # enough variety to mean something: every case, main thread and workers
    h.check(len(want) >= 50, t + ": the workload made its stacks", "%d stacks" % len(want))
    wrong = ["%s: %d bytes, want %d" % (show(k), got.get(k, 0), v)
             for k, v in sorted(want.items()) if got.get(k, 0) != v]
    h.check(not wrong, "%s: each of %d stacks has its blocks' bytes" % (t, len(want)),
            "%d wrong: %s" % (len(wrong), "; ".join(wrong[:4])))
    stray = ["%s: %d bytes" % (show(k), v) for k, v in sorted(got.items())
             if k and k[0][1:] in sites and k not in want]
    h.check(not stray, t + ": no other stack ends at a site line",
            "%d: %s" % (len(stray), "; ".join(stray[:4])))


if __name__ == "__main__":
    sys.exit(main())
