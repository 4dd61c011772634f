# GIL sums (tests/e2e/test_gil_sums.py): four CPU-bound threads and one
# I/O thread that sleeps 1 ms per loop, then every other way a thread
# gives the GIL up, each in its own short phase:
#   lock    a thread blocked on a threading.Lock (and a queue.Queue)
#   ctypes  foreign calls that release the GIL (libc usleep via ctypes)
#   cdrop   long C calls that release it (hashlib, zlib on big data)
#   raw     a _thread thread (no threading.Thread) that ends while others
#           wait for the GIL
#   switch  forced switches at a short sys.setswitchinterval
#   fork    os.fork() from a thread while others run (the child exits)
#   cthread a thread made by libc's pthread_create that calls Python
#           through a ctypes callback (PyGILState_Ensure/Release)
# Each worker measures its own lifetime, CPU time (time.thread_time),
# run delay (time runnable but not running, /proc/thread-self/schedstat:
# a preempted GIL holder holds it without CPU time; plus the VM's steal
# time meanwhile, the same for a vCPU the hypervisor did not run) and, for sleepers,
# how much later than asked its sleeps returned (the GIL is retaken
# before sleep() returns; timer slack set to 1 ns), and prints
# "thread NATIVE_ID NAME KIND LIFE_S CPU_S DELAY_S LATE_S RELEASES WORK_S",
# RELEASES being how many calls that release the GIL it made (0: not
# counted), WORK_S for a spinning thread the CPU its spin loop's steps
# take at best (each timed alone, before the threads start): the GIL is
# held through each step, so its holds last at least that long, however
# much CPU its waits burned (at a 0.3 ms switch interval on a loaded
# machine, waking every 0.3 ms costs up to half a waiter's CPU time).
# KIND: cpu (runs Python all along), switch (the same at a 0.3 ms switch
# interval), io (sleeps or blocks), cdrop (long C calls), fork (spins,
# forks and waits for its child).
# Usage: gil_sums.py [SECONDS] [PHASES]  (PHASES: comma list, default all)
import _thread
import ctypes
import hashlib
import os
import queue
import sys
import threading
import time
import zlib

DUR = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
PHASES = (sys.argv[2] if len(sys.argv) > 2 else
          "main,lock,ctypes,cdrop,raw,switch,fork,cthread").split(",")
res = []
res_lock = threading.Lock()


def delay():
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


# time the hypervisor ran no vCPU of this VM (all of them: a bound for
# this thread's): the guest counts it neither as the thread's CPU time
# nor as its run delay, yet a GIL holder holds the GIL through it
def steal():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


# the window measured is [start(), report()]: reading schedstat (a file:
# it releases the GIL) stays outside it
def start():
    d = delay()
    st = steal()
    c = time.thread_time()
    return time.perf_counter(), c, d, st


def report(name, kind, t0, late=0.0, releases=0):
    life = time.perf_counter() - t0[0]
    cpu = time.thread_time() - t0[1]
    d = delay() - t0[2] + steal() - t0[3]
    work = getattr(_tls, "steps", 0) * STEP_CPU
    with res_lock:
        res.append((threading.get_native_id(), name, kind, life, cpu, d, late,
                    releases, work))


def measured(name, kind):
    def wrap(fn):
        def run(*a):
            t0 = start()
            n = fn(*a)
            report(name, kind, t0, releases=n or 0)
        return run
    return wrap


_tls = threading.local()


def spin(dur, steps=None):
    t0 = time.perf_counter()
    x = n = 0
    while time.perf_counter() - t0 < dur and n != steps:
        for _ in range(1000):
            x += 1
        n += 1
    _tls.steps = n


def step_cpu():
    """the least CPU one step of spin() took, of 9 timings of 20 steps"""
    best = float("inf")
    for _ in range(9):
        c = time.thread_time()
        spin(1.0, 20)
        best = min(best, (time.thread_time() - c) / 20)
    _tls.steps = 0
    return best


STEP_CPU = step_cpu()


def cpu_thread(name, dur, kind="cpu"):
    return threading.Thread(target=measured(name, kind)(spin), args=(dur,),
                            name=name)


def io_loop(dur):
    ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)     # PR_SET_TIMERSLACK
    t0 = start()
    late, n = 0.0, 0
    while time.perf_counter() - t0[0] < dur:
        a = time.perf_counter()
        time.sleep(0.001)
        late += time.perf_counter() - a - 0.001
        n += 1
    report("io-0", "io", t0, late, n)


def run_all(ts):
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def phase_main():
    ts = [cpu_thread("cpu-%d" % i, DUR) for i in range(4)]
    ts.append(threading.Thread(target=io_loop, args=(DUR,), name="io-0"))
    run_all(ts)


def phase_lock():
    lk = threading.Lock()
    q = queue.Queue()

    def holder():
        for _ in range(20):
            with lk:
                time.sleep(0.01)
            q.put(1)
            time.sleep(0.001)

    def blocked():
        n = 0
        while n < 20:
            with lk:
                pass
            q.get()
            n += 1

    ts = [threading.Thread(target=measured("lock-h", "io")(holder),
                           name="lock-h"),
          threading.Thread(target=measured("lock-w", "io")(blocked),
                           name="lock-w"),
          cpu_thread("lock-cpu", 0.4)]
    run_all(ts)


def phase_ctypes():
    usleep = ctypes.CDLL(None).usleep

    def caller():
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 0.4:
            usleep(1000)
            n += 1
        return n

    ts = [threading.Thread(target=measured("ctypes-0", "io")(caller),
                           name="ctypes-0"),
          cpu_thread("ctypes-cpu", 0.4)]
    run_all(ts)


def phase_cdrop():
    data = os.urandom(8 << 20)

    def crunch():
        for _ in range(3):
            hashlib.sha256(data).digest()
            zlib.compress(data[: 2 << 20], 1)
        return 6

    ts = [threading.Thread(target=measured("cdrop-0", "cdrop")(crunch),
                           name="cdrop-0"),
          cpu_thread("cdrop-cpu", 0.4)]
    run_all(ts)


def phase_raw():
    done = threading.Event()

    def raw(dur):
        t0 = start()
        spin(dur)
        report("raw-0", "cpu", t0)
        done.set()

    ts = [cpu_thread("raw-cpu-%d" % i, 0.5) for i in range(2)]
    for t in ts:
        t.start()
    _thread.start_new_thread(raw, (0.25,))
    done.wait()
    for t in ts:
        t.join()
    time.sleep(0.01)   # raw-0 is gone by now


def phase_switch():
    old = sys.getswitchinterval()
    # many waiters timing out often: glibc's replacement signals (a
    # timed-out waiter that consumed a wake-up passes one on) are common
    sys.setswitchinterval(0.0003)
    ts = [cpu_thread("switch-%d" % i, 0.4, "switch") for i in range(6)]
    run_all(ts)
    sys.setswitchinterval(old)


def phase_fork():
    def forker():
        spin(0.1)
        pid = os.fork()
        if pid == 0:
            spin(0.05)
            os._exit(0)
        os.waitpid(pid, 0)
        spin(0.1)
        return 1

    ts = [threading.Thread(target=measured("fork-0", "fork")(forker),
                           name="fork-0"),
          cpu_thread("fork-cpu", 0.3)]
    run_all(ts)


def phase_cthread():
    libc = ctypes.CDLL(None)
    body_t = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)

    def body(arg):
        t0 = start()
        spin(0.2)
        report("cthread-0", "cpu", t0)
        return None

    cb = body_t(body)
    th = ctypes.c_ulong()
    other = cpu_thread("cthread-cpu", 0.3)
    other.start()
    if libc.pthread_create(ctypes.byref(th), None, cb, None) == 0:
        libc.pthread_join(th, None)     # releases the GIL meanwhile
    other.join()


for p in PHASES:
    globals()["phase_" + p]()
for r in res:
    print("thread", *r)
print("done", flush=True)
