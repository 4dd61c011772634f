"""A long, busy allocating loop for --max-size (tests/e2e/test_maxsize.py,
scripts/bench_longtrace.sh): churn that is freed at once, a bounded
cache that turns over, and one planted leak that grows all run long.
Deterministic for a given count: argv[1] iterations, or "--seconds S"
to run for S seconds instead."""
import sys
import time

LEAKED = []


def leak(i):
    LEAKED.append(bytearray(256 + i % 7))  # LEAK: planted


def churn(i):
    d = {"id": i, "name": "item%d" % i, "tags": [i, i + 1, i + 2]}
    s = str(i) * 8
    return len((d, s, i * 2.5)[1])


def main():
    if sys.argv[1:2] == ["--seconds"]:
        n, end = 1 << 62, time.monotonic() + float(sys.argv[2])
    else:
        n, end = int(sys.argv[1]), None
    cache = {}
    total = 0
    for i in range(n):
        total += churn(i)
        if i % 16 == 0:
            cache[i % 4096] = [i] * 8  # bounded cache: turns over
        if i % 50 == 0:
            leak(i)
        if end is not None and i % 4096 == 0 and time.monotonic() >= end:
            break
    print(total, len(LEAKED))


if __name__ == "__main__":
    main()
