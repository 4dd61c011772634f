# A long-running target for tests/e2e/test_attach.py, attached to by pid.
# It idles (the cycle GC disabled, nothing allocated) until told on stdin,
# so what pyprof sees while attached is exactly what the commands made.
# One command per line, one answer line each:
#   ping          -> "pong" (it keeps serving)
#   gc N          -> N gc.collect(gen) of each generation plus churn that
#                    makes automatic collections, GC enabled only meanwhile;
#                    "gc C0 C1 C2": collections per generation gc.callbacks saw
#   lock          -> a planted contention, 23 blocking acquires timed:
#                    "lock FILE LINE WAIT_S N"
#   grow MB       -> keep MB of 1 MiB blocks (glibc mmaps each): "grown MB"
#   premap MB     -> keep one MB block, zeroed by the kernel, not touched
#                    (no page of it made yet): "premapped MB"
#   touch         -> write one byte in each page of it: "touched PAGES"
#   spin S        -> gc.collect(0) every 10 ms for S s in a thread: "spinning"
#   untouch       -> give its second half back (madvise MADV_DONTNEED):
#                    "untouched PAGES"
#   thread        -> start a thread that waits to be renamed: "started TID"
#   rename NAME   -> that thread sets its OS name (prctl PR_SET_NAME, as
#                    pthread_setname_np does) and ends, waiting for the GIL
#                    that this one holds busy meanwhile: "renamed NAME TID"
#   quit          -> exits
import ctypes
import gc
import mmap
import os
import sys
import threading
import time

counts = [0, 0, 0]
kept = []


def on_gc(phase, info):
    if phase == "start":
        counts[info["generation"]] += 1


def gc_burst(n):
    before = list(counts)
    gc.enable()
    for _ in range(n):
        for gen in (0, 1, 2):
            gc.collect(gen)
    junk = []
    for i in range(20000):                  # automatic collections
        a, b = [], []
        a.append(b)
        b.append(a)
        junk.append(a)
        if len(junk) > 500:
            junk.clear()
    junk = a = b = None
    gc.disable()
    return [counts[g] - before[g] for g in (0, 1, 2)]


def contention():
    lock = threading.Lock()
    stop = threading.Event()
    planted = {"wait": 0.0, "n": 0}

    # the holder leaves 10 ms between holds, so a woken waiter takes the
    # lock before it comes back (one futex wait per blocking acquire)
    def holder():
        while not stop.is_set():
            with lock:
                time.sleep(0.02)
            time.sleep(0.01)

    def waiter():
        while planted["n"] < 23:
            if lock.acquire(blocking=False):        # free: no contention
                lock.release()
                time.sleep(0.001)
                continue
            t = time.perf_counter()
            lock.acquire()                          # PLANTED_LOCK
            planted["wait"] += time.perf_counter() - t
            planted["n"] += 1
            lock.release()
            time.sleep(0.005)
        stop.set()

    h = threading.Thread(target=holder)
    w = threading.Thread(target=waiter)
    h.start()
    time.sleep(0.01)
    w.start()
    w.join()
    h.join()
    line = [i for i, l in enumerate(open(__file__), 1) if "# PLANTED_LOCK" in l][0]
    return "lock %s %d %.6f %d" % (__file__, line, planted["wait"], planted["n"])


# a thread's first exit makes glibc < 2.34 load libgcc_s (its unwinder):
# have that happen now, not while pyprof is attached. join() returns when
# the Python thread is done, before its pthread_exit() unwinds: wait for
# the kernel task itself to go.
tid = []
t = threading.Thread(target=lambda: tid.append(threading.get_native_id()))
t.start()
t.join()
for _ in range(1000):
    if not os.path.exists("/proc/self/task/%d" % tid[0]):
        break
    time.sleep(0.001)
gc.disable()
gc.callbacks.append(on_gc)
print("ready", flush=True)
for cmd in sys.stdin:
    words = cmd.split()
    if not words:
        continue
    if words[0] == "ping":
        out = "pong"
    elif words[0] == "gc":
        out = "gc " + " ".join(map(str, gc_burst(int(words[1]))))
    elif words[0] == "lock":
        out = contention()
    elif words[0] == "grow":
        for _ in range(int(words[1])):
            kept.append(bytearray(1 << 20))     # GROW
        out = "grown " + words[1]
    elif words[0] == "premap":
        # private anonymous memory no page of which exists yet (a
        # bytearray would be zeroed, every page touched, at once)
        pre = mmap.mmap(-1, int(words[1]) << 20, flags=mmap.MAP_PRIVATE)
        out = "premapped " + words[1]
    elif words[0] == "touch":
        n = 0
        for i in range(0, len(pre), 4096):
            pre[i] = 1                          # TOUCH
            n += 1
        out = "touched %d" % n
    elif words[0] == "untouch":
        half = len(pre) // 2
        pre.madvise(mmap.MADV_DONTNEED, half, half)
        out = "untouched %d" % (half // 4096)
    elif words[0] == "spin":                # collections in the background
        def spin(until):
            while time.monotonic() < until:
                gc.collect(0)
                time.sleep(0.01)
        threading.Thread(target=spin, args=(time.monotonic() + float(words[1]),),
                         daemon=True).start()
        out = "spinning"
    elif words[0] == "thread":
        go, named, tids = threading.Event(), [], []

        def renamed():
            tids.append(threading.get_native_id())
            go.wait()
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(15, named[0].encode(), 0, 0, 0)     # PR_SET_NAME

        th = threading.Thread(target=renamed)
        th.start()
        while not tids:
            time.sleep(0.001)
        out = "started %d" % tids[0]
    elif words[0] == "rename":
        named.append(words[1])
        go.set()
        # busy meanwhile: the thread waits for the GIL (so it is among
        # the GIL's threads) before and after its rename
        while th.is_alive():
            pass
        th.join()
        out = "renamed %s %d" % (words[1], tids[0])
    elif words[0] == "quit":
        break
    else:
        out = "?"
    print(out, flush=True)
