"""Stacks stay exact where frames are reused in place (frame_reuse.py).

The shim keeps each thread's recent stacks and reuses an id when the
(code, offset) chain repeats; CPython reuses a frame's memory for the next
call (3.11+: the same slot of the thread's frame stack; 3.9/3.10: a code
object's zombie frame). Per interpreter, recording every allocation, the
collapsed export (--by alloc) must hold each of these innermost stacks
with exactly ROUNDS (or ROUNDS/3) blocks of its case's size (+33, the
bytes header), and nothing else of that size:
- a and b, called alternately from one line;
- shared, under caller1 and under caller2 (two stacks);
- the generator's line under resume1 and under resume2 (two stacks);
- line 1, 2 and 3 of "<reuse>", code objects compiled and dropped in turn
  (an address reused by a code object with other lines).
"""
import re
import sys

import harness as h

W = "frame_reuse.py"
ROUNDS = 300
HEAD = 33
FRAME = re.compile(r"^(.*) \((.*):(\d+)\)$")


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def parse(text):
    """{tuple of (function, basename, line) innermost first: value}"""
    out = {}
    for line in text.splitlines():
        stack, _, value = line.rpartition(" ")
        frames = []
        for f in stack.split(";"):
            m = FRAME.match(f)
            if not m:
                break
            frames.append((m.group(1), m.group(2).rsplit("/", 1)[-1], int(m.group(3))))
        else:
            key = tuple(reversed(frames))
            out[key] = out.get(key, 0) + int(value)
    return out


def one(label, py):
    t = "%s %s" % (label, W)
    r = h.record(py, W)
    h.check(r.rc == 0 and "frame_reuse: %d rounds" % ROUNDS in r.out, t + ": exits 0, output intact",
            "rc %s; stdout %s; stderr %s" % (r.rc, h.tail(r.out), h.tail(r.err)))
    if r.rc != 0:
        return
    rep = h.pyprof("report", r.trace, "--format", "collapsed", "--by", "alloc")
    stacks = parse(rep.out)
    base = "frame_reuse.py"
    L = lambda m: h.line_of(W, m)
    cases = [
        ("a", [("a", base, L("REUSE-A"))], 3001, ROUNDS),
        ("b", [("b", base, L("REUSE-B"))], 3002, ROUNDS),
        ("shared under caller1", [("shared", base, L("REUSE-SAME")),
                                  ("caller1", base, L("REUSE-CALLER1"))], 3003, ROUNDS),
        ("shared under caller2", [("shared", base, L("REUSE-SAME")),
                                  ("caller2", base, L("REUSE-CALLER2"))], 3003, ROUNDS),
        ("gen under resume1", [("gen", base, L("REUSE-GEN")),
                               ("resume1", base, L("REUSE-RESUME1"))], 3004, ROUNDS),
        ("gen under resume2", [("gen", base, L("REUSE-GEN")),
                               ("resume2", base, L("REUSE-RESUME2"))], 3004, ROUNDS),
    ] + [("<reuse> line %d" % n, [("<module>", "<reuse>", n)], 3005, ROUNDS // 3)
         for n in (1, 2, 3)]
    for name, inner, size, count in cases:
        got = [v for k, v in stacks.items() if list(k[:len(inner)]) == inner]
        want = count * (size + HEAD)
        h.check(got == [want], "%s: %s: one stack, %d blocks of %d bytes" % (t, name, count, size + HEAD),
                "stacks found %s; want [%d]" % (got, want))


if __name__ == "__main__":
    sys.exit(main())
