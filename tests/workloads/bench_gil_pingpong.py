# Overhead benchmark: two threads bounce a byte through two pipes, so
# every round trip releases and retakes the GIL four times (os.read and
# os.write drop it). Prints "elapsed SECONDS" and "cpu SECONDS"
# (all threads, kernel time included: where probes cost) for the round trips.
import os
import sys
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
a_r, a_w = os.pipe()
b_r, b_w = os.pipe()


def echo():
    for _ in range(N):
        os.write(b_w, os.read(a_r, 1))


t = threading.Thread(target=echo, name="echo")
t.start()
t0 = time.perf_counter()
c0 = time.process_time()
for _ in range(N):
    os.write(a_w, b"x")
    os.read(b_r, 1)
print("elapsed", time.perf_counter() - t0)
print("cpu", time.process_time() - c0)
t.join()
