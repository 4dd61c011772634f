# Cycle-GC ground truth for tests/unit/test_bpf_stalls.c: every
# collection between "go" and the results, timed by gc.callbacks, with
# the time the thread sat runnable but preempted in between (schedstat)
# so a loaded machine does not blur the truth.
# Protocol: prints "ready", reads a line, runs, prints
# "gc GEN DURATION_NS RUN_DELAY_NS COLLECTED UNCOLLECTABLE GAP_DELAY_NS"
# per collection, "gaps SUM_NS" (every gap's run delay, once), "done",
# then waits for a line before exiting.
# RUN_DELAY_NS: run delay from just before the "start" clock read to
# just after the "stop" one (a bound on the time preempted inside).
# GAP_DELAY_NS: run delay from just before the previous collection's
# "stop" clock read to just after this one's "start" clock read, and
# from just before its "stop" clock read to just after the next
# "start" one: the parts of a pause outside the callbacks' interval lie
# in those gaps, the callbacks' own code included (3.13 probes the
# function that calls them, Python/gc.c gc_collect_main).
import gc
import os
import sys
import time

log = []
fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)


def delay():
    return int(os.pread(fd, 100, 0).split()[1])


gaps = []


def cb(phase, info):
    d0 = delay()
    t = time.perf_counter_ns()
    d1 = delay()
    if phase == "start":
        gaps.append(d1 - cb.stop)
        cb.d, cb.t = d0, t
    else:
        log.append((info["generation"], t - cb.t, d1 - cb.d,
                    info["collected"], info["uncollectable"]))
        cb.stop = d0


class Node:
    def __init__(self, other=None):
        self.other = other


gc.disable()
keep = [[i] for i in range(300000)]        # full collections have work
print("ready", flush=True)
sys.stdin.readline()
cb.stop = delay()
gc.callbacks.append(cb)
gc.enable()
for i in range(120000):
    a = Node()
    a.other = Node(a)                      # cyclic garbage
    if i % 7 == 0:
        keep.append([a])                   # survivors climb generations
    if i % 40000 == 39999:
        gc.collect()
gc.collect(1)
gaps.append(delay() - cb.stop)
gc.disable()
gc.callbacks.remove(cb)
for i, (g, d, r, c, u) in enumerate(log):
    print("gc", g, d, r, c, u, gaps[i] + gaps[i + 1])
print("gaps", sum(gaps))                   # each gap once
print("done", flush=True)
sys.stdin.readline()
