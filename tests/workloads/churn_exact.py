"""Millions of allocation events, and among them an exact count of
64 KiB blocks made at one marked line and kept until exit.

Each iteration makes and drops a dict, a string, a tuple and a 700-byte
bytes object (the churn: about ten events); every KEEP_EVERY-th also
makes one block at KEEP-64K (b"\\1" * SIZE is a single PyObject_Malloc,
see exact.py) and keeps it, appended on another line so that the
list's resizes are not counted at the marked one.
"""
import sys

SIZE = 1 << 16
KEEP_EVERY = 500
KEPT = []


def churn(n):
    total = 0
    for i in range(n):
        d = {"id": i, "s": "x%d" % i, "t": (i, i + 1)}
        b = b"\0" * 700
        total += len(d["s"]) + len(b)
        if i % KEEP_EVERY == 0:
            block = b"\1" * SIZE  # KEEP-64K
            KEPT.append(block)
    return total


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400000
    churn(n)
    print("churn: %d iterations, %d blocks kept" % (n, len(KEPT)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
