# Lock-contention ground truth for tests/unit/test_bpf_stalls.c: a
# waiter blocks on a lock another thread holds for 20 ms at a time, and
# times each blocking acquire itself. Prints "lock FILE LINE WAIT_S N".
import sys
import threading
import time

lock = threading.Lock()
stop = threading.Event()
planted = {"wait": 0.0, "n": 0}


def holder():
    while not stop.is_set():
        with lock:
            time.sleep(0.02)
        time.sleep(0.002)


def waiter():
    for _ in range(40):
        t = time.perf_counter()
        lock.acquire()                                  # PLANTED
        planted["wait"] += time.perf_counter() - t
        planted["n"] += 1
        lock.release()
        time.sleep(0.005)
    stop.set()


print("ready", flush=True)
sys.stdin.readline()
h = threading.Thread(target=holder)
w = threading.Thread(target=waiter)
h.start()
time.sleep(0.01)
w.start()
w.join()
h.join()
line = [i for i, l in enumerate(open(__file__), 1) if "# PLANTED" in l][0]
print("lock", __file__, line, planted["wait"], planted["n"])
print("done", flush=True)
sys.stdin.readline()
