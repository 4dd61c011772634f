# GIL ground truth for tests/unit/test_bpf_stalls.c: four CPU-bound
# threads and one I/O thread (2 ms sleeps), each bounding its own GIL
# wait over the life pyprof gives it by the scheduler's accounting
# (gil_truth.py).
# Prints "thread NATIVE_ID LIFETIME_S WAIT_MIN_S WAIT_MAX_S" per thread.
import sys
import threading
import time

import gil_truth

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
res = {}


def cpu():
    life = gil_truth.Life()
    t0 = time.perf_counter()
    x = 0
    while time.perf_counter() - t0 < DUR:
        for _ in range(1000):
            x += 1
    res[threading.get_native_id()] = life.end()


def io():
    life = gil_truth.Life()
    gil_truth.libc.prctl(29, 1, 0, 0, 0)     # PR_SET_TIMERSLACK: 1 ns
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < DUR:
        time.sleep(0.002)
        n += 1
    res[threading.get_native_id()] = life.end(asleep=n * 0.002)


print("ready", flush=True)
sys.stdin.readline()
ts = [threading.Thread(target=cpu) for _ in range(4)]
ts.append(threading.Thread(target=io))
for t in ts:
    t.start()
for t in ts:
    t.join()
for tid, (life, lo, hi) in res.items():
    print("thread", tid, life, lo, hi)
print("done", flush=True)
sys.stdin.readline()
