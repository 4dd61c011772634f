"""A function first called while pyprof's shim is dropping records (its
definition lost), then called again once recording resumes, for
tests/e2e/test_defs_lost.py. Files (paths in argv) synchronize with the
test: READY once running; the test stops pyprof and makes GO; this
churns 1.5 s (the ring fills, the shim waits 1 s, then drops), calls
first_seen() 10 times without keeping anything, churns 0.3 s more and
waits for RESUME (pyprof running again); then keeps KEEP blocks made by
first_seen() and prints "kept KEEP".
Usage: defs_lost.py READY GO RESUME KEEP
"""
import os
import sys
import time

KEPT = []


def first_seen(keep):
    b = bytes(1000)  # FIRST-LINE
    if keep:
        KEPT.append(b)


def churn(secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        junk = [[i] for i in range(100)]
        del junk


def wait_for(path):
    while not os.path.exists(path):
        churn(0.01)


def main():
    ready, go, resume, keep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    open(ready, "w").close()
    wait_for(go)
    churn(1.5)
    for _ in range(10):
        first_seen(False)
    churn(0.3)
    wait_for(resume)
    for _ in range(keep):
        first_seen(True)
    print("kept", len(KEPT), flush=True)


if __name__ == "__main__":
    main()
