# Cycle-GC ground truth for tests/e2e/test_fallback_gc.py: every
# collection inside a window, timed with CLOCK_MONOTONIC
# (time.monotonic_ns, the clock of pyprof's records) by two gc.callbacks
# entries of our own, one first in the list and one last, so that any
# other entry (pyprof's) runs between them at both phases: its pause
# lies within [first's stop - last's start, last's stop - first's start]
# whatever the thread meets between the callbacks (preemption, a full
# ring). Automatic collections are off at both edges of the window, so
# exactly the collections printed happen inside it.
# Prints "window START_NS END_NS", then per collection
# "gc GEN START_NS END_NS COLLECTED UNCOLLECTABLE FIRST_START FIRST_STOP"
# (START/END from the last entry, FIRST_* from the first).
import gc
import time

log = []
first = []


def cb_first(phase, info):
    first.append(time.monotonic_ns())


def cb(phase, info):
    if phase == "start":
        cb.t = time.monotonic_ns()
    else:
        log.append((info["generation"], cb.t, time.monotonic_ns(),
                    info["collected"], info["uncollectable"]))


class Node:
    def __init__(self, other=None):
        self.other = other


gc.disable()
keep = [[i] for i in range(300000)]        # full collections have work
gc.callbacks.insert(0, cb_first)
gc.callbacks.append(cb)
w0 = time.monotonic_ns()
gc.enable()
for i in range(120000):
    a = Node()
    a.other = Node(a)                      # cyclic garbage
    if i % 7 == 0:
        keep.append([a])                   # survivors climb generations
    if i % 40000 == 39999:
        gc.collect()
gc.collect(1)
gc.disable()
w1 = time.monotonic_ns()
gc.callbacks.remove(cb)
gc.callbacks.remove(cb_first)
print("window", w0, w1)
for (g, s, e, c, u), fs, fe in zip(log, first[0::2], first[1::2]):
    print("gc", g, s, e, c, u, fs, fe)
