"""Allocate in a loop; every 0.5 s append "T RATE" to the file in argv[1]:
T is time.monotonic() (CLOCK_MONOTONIC, the same clock for every process
on the machine), RATE the allocations per second (wall clock) since the
last line. Runs for
argv[2] seconds. Each iteration makes a list and a dict (a few
allocations each, through pymalloc and the PyMem hooks)."""
import sys
import time

out = open(sys.argv[1], "w", buffering=1)
end = time.monotonic() + float(sys.argv[2])
t0 = last = time.monotonic()
n = 0
keep = []
while True:
    for i in range(2000):
        x = [i, i]
        d = {"a": x}
        keep.append(d)
        if len(keep) > 64:
            del keep[:32]
    n += 2000
    now = time.monotonic()
    if now - last >= 0.5:
        out.write("%.3f %.0f\n" % (now, n / (now - last)))
        n = 0
        last = now
        if now >= end:
            break
