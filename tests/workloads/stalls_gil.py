# GIL ground truth for tests/unit/test_bpf_stalls.c: four CPU-bound
# threads and one I/O thread, measured by the kernel's scheduler
# accounting (/proc/thread-self/schedstat: time on CPU, time runnable
# but not running). A CPU-bound thread is running, runnable, or blocked
# on the GIL: its wait is lifetime - on-CPU - (0 .. run delay), since a
# preempted holder is runnable too. The I/O thread's wait is how much
# later than asked each sleep returns (the GIL is retaken before sleep()
# returns; timer slack set to 1 ns), less 0 .. its run delay. Both lower
# bounds also subtract the VM's steal time over the window: a vCPU the
# hypervisor did not run counts as neither CPU time nor run delay, yet
# its thread may hold the GIL throughout.
# Prints "thread NATIVE_ID LIFETIME_S WAIT_MIN_S WAIT_MAX_S" per thread.
import ctypes
import os
import sys
import threading
import time

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
res = {}


def sched():
    with open("/proc/stat") as f:
        steal = int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/thread-self/schedstat") as f:
        oncpu, delay = f.read().split()[:2]
    return int(oncpu) / 1e9, int(delay) / 1e9 + steal


def cpu():
    c0, d0 = sched()
    t0 = time.perf_counter()
    x = 0
    while time.perf_counter() - t0 < DUR:
        for _ in range(1000):
            x += 1
    life = time.perf_counter() - t0
    c1, d1 = sched()
    blocked = life - (c1 - c0)
    res[threading.get_native_id()] = (life, blocked - (d1 - d0), blocked)


def io():
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
    res[threading.get_native_id()] = (life, late - (d1 - d0), late)


print("ready", flush=True)
sys.stdin.readline()
ts = [threading.Thread(target=cpu) for _ in range(4)]
ts.append(threading.Thread(target=io))
for t in ts:
    t.start()
for t in ts:
    t.join()
for tid, (life, lo, hi) in res.items():
    print("thread", tid, life, max(lo, 0.0), hi)
print("done", flush=True)
sys.stdin.readline()
