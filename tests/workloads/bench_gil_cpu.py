# Overhead benchmark: four CPU-bound threads contending for the GIL, no
# allocation in the loop. Prints "elapsed SECONDS" and "cpu SECONDS"
# (all threads, kernel time included: where probes cost) for the threaded part.
import itertools
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def spin():
    for _ in itertools.repeat(None, N):
        for _ in itertools.repeat(None, 1000):
            pass


ts = [threading.Thread(target=spin, name="spin-%d" % i) for i in range(4)]
t0 = time.perf_counter()
c0 = time.process_time()
for t in ts:
    t.start()
for t in ts:
    t.join()
print("elapsed", time.perf_counter() - t0)
print("cpu", time.process_time() - c0)
