"""Allocation-heavy pure-Python workload for scripts/bench.sh: builds and
drops dicts, lists, strings and tuples (pymalloc and malloc sizes)."""
import sys


def work(n):
    keep = []
    total = 0
    for i in range(n):
        d = {"id": i, "name": "item%d" % i, "tags": [i, i + 1, i + 2]}
        s = str(i) * 8
        t = (d, s, i * 2.5)
        if i % 64 == 0:
            keep.append(bytearray(4096))
        if len(keep) > 256:
            keep = keep[128:]
        total += len(t[1]) + len(d["tags"])
    return total


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    print(work(n))
