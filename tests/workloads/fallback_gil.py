# GIL ground truth for tests/e2e/test_fallback_gil.py (the method of
# stalls_gil.py, with named threads): four CPU-bound threads and one
# I/O thread (2 ms sleeps), each bounding its own GIL wait over the life
# pyprof gives it by the scheduler's accounting (gil_truth.py).
# Prints "thread NAME NATIVE_ID LIFETIME_S WAIT_MIN_S WAIT_MAX_S", and
# "profile NAME NONE" (is sys.getprofile() None inside the thread).
import sys
import threading
import time

import gil_truth

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
res = {}
prof = {}


def cpu():
    life = gil_truth.Life()
    prof[threading.current_thread().name] = sys.getprofile() is None
    t0 = time.perf_counter()
    x = 0
    while time.perf_counter() - t0 < DUR:
        for _ in range(1000):
            x += 1
    res[threading.current_thread().name] = (threading.get_native_id(),) + life.end()


def io():
    life = gil_truth.Life()
    prof[threading.current_thread().name] = sys.getprofile() is None
    gil_truth.libc.prctl(29, 1, 0, 0, 0)     # PR_SET_TIMERSLACK: 1 ns
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < DUR:
        time.sleep(0.002)
        n += 1
    res[threading.current_thread().name] = (
        (threading.get_native_id(),) + life.end(asleep=n * 0.002))


ts = [threading.Thread(target=cpu, name="cpu-%d" % i) for i in range(4)]
ts.append(threading.Thread(target=io, name="io-0"))
for t in ts:
    t.start()
for t in ts:
    t.join()
for name, (tid, life, lo, hi) in sorted(res.items()):
    print("thread", name, tid, life, lo, hi)
for name, none in sorted(prof.items()):
    print("profile", name, none)
