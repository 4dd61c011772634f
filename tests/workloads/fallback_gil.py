# GIL ground truth for tests/e2e/test_fallback_gil.py (the method of
# stalls_gil.py, with named threads): four CPU-bound threads and one
# I/O thread, measured by the kernel's scheduler accounting
# (/proc/thread-self/schedstat: on-CPU time, time runnable but not
# running). A CPU-bound thread runs, is runnable, or is blocked on the
# GIL: its wait is lifetime - on-CPU - (0 .. run delay). The I/O
# thread's wait is how much later than asked each sleep returns (the
# GIL is retaken before sleep() returns; timer slack 1 ns), less
# 0 .. its run delay. Both lower bounds also subtract the VM's steal
# time (see stalls_gil.py).
# Prints "thread NAME NATIVE_ID LIFETIME_S WAIT_MIN_S WAIT_MAX_S", and
# "profile NAME NONE" (is sys.getprofile() None inside the thread).
import ctypes
import os
import sys
import threading
import time

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
res = {}
prof = {}


def sched():
    with open("/proc/stat") as f:
        steal = int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/thread-self/schedstat") as f:
        oncpu, delay = f.read().split()[:2]
    return int(oncpu) / 1e9, int(delay) / 1e9 + steal


def cpu():
    prof[threading.current_thread().name] = sys.getprofile() is None
    c0, d0 = sched()
    t0 = time.perf_counter()
    x = 0
    while time.perf_counter() - t0 < DUR:
        for _ in range(1000):
            x += 1
    life = time.perf_counter() - t0
    c1, d1 = sched()
    blocked = life - (c1 - c0)
    res[threading.current_thread().name] = (
        threading.get_native_id(), life, blocked - (d1 - d0), blocked)


def io():
    prof[threading.current_thread().name] = sys.getprofile() is None
    ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)     # PR_SET_TIMERSLACK
    c0, d0 = sched()
    t0 = time.perf_counter()
    late = 0.0
    while time.perf_counter() - t0 < DUR:
        a = time.perf_counter()
        time.sleep(0.002)
        late += time.perf_counter() - a - 0.002
    life = time.perf_counter() - t0
    c1, d1 = sched()
    res[threading.current_thread().name] = (
        threading.get_native_id(), life, late - (d1 - d0), late)


ts = [threading.Thread(target=cpu, name="cpu-%d" % i) for i in range(4)]
ts.append(threading.Thread(target=io, name="io-0"))
for t in ts:
    t.start()
for t in ts:
    t.join()
for name, (tid, life, lo, hi) in sorted(res.items()):
    print("thread", name, tid, life, max(lo, 0.0), hi)
for name, none in sorted(prof.items()):
    print("profile", name, none)
