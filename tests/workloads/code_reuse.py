"""Code objects freed and made again at the same addresses, in a loop.

Each round compiles a small function whose allocation is on line
2 + k % 7 of gen_a.py or gen_b.py (k % 2), named f0..f2 (k % 3), calls it
once, keeps the 64 KiB bytes object it returns (one PyObject_Malloc, as
in exact.py) and drops the code object, whose memory the next round's
code object takes again. A profiler that knows code objects by address
alone gives every round the first round's line, file or name.
"""
import sys

ROUNDS = 210
SIZE = 1 << 16
KEEP = []


def make(k):
    src = "def f%d():\n" % (k % 3) + "\n" * (k % 7) + "    return b'\\0' * %d\n" % SIZE
    ns = {}
    exec(compile(src, "gen_%s.py" % "ab"[k % 2], "exec"), ns)
    return ns.pop("f%d" % (k % 3))  # no cycle: freed at once


def main():
    for k in range(ROUNDS):
        f = make(k)
        KEEP.append(f())
        del f
    print("code_reuse: %d rounds" % len(KEEP))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
