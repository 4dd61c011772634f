"""Allocate in a loop; every 0.5 s append "T WALL_RATE CPU_RATE" to the
file in argv[1]: T is time.monotonic() (CLOCK_MONOTONIC, one clock for
every process on the machine), the rates are allocations per second
since the last line, of wall time and of this process's CPU time (user
+ sys: what the allocations cost, whatever else the machine runs).
Runs for argv[2] seconds. Each iteration makes a list and a dict (a few
allocations each, through pymalloc and the PyMem hooks)."""
import sys
import time

out = open(sys.argv[1], "w", buffering=1)
end = time.monotonic() + float(sys.argv[2])
last = time.monotonic()
last_cpu = time.process_time()
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
        cpu = time.process_time()
        out.write("%.3f %.0f %.0f\n" % (now, n / (now - last),
                                        n / max(cpu - last_cpu, 1e-6)))
        n = 0
        last, last_cpu = now, cpu
        if now >= end:
            break
