# Lock-contention ground truth for tests/e2e/test_fallback_locks.py: a
# waiter blocks on a threading.Lock that another thread holds for 20 ms
# at a time, at the line marked CONTENDED-LOCK, and times each blocking
# acquire itself (only acquires that found it held). Prints "lock WAIT_S N".
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
    # only blocking acquires are timed and counted: on a loaded machine
    # the holder can be late and the lock found free (no contention)
    while planted["n"] < 40:
        if lock.acquire(blocking=False):
            lock.release()
            time.sleep(0.001)
            continue
        t = time.perf_counter()
        lock.acquire()                                  # CONTENDED-LOCK
        planted["wait"] += time.perf_counter() - t
        planted["n"] += 1
        lock.release()
        time.sleep(0.005)
    stop.set()


h = threading.Thread(target=holder, name="holder")
w = threading.Thread(target=waiter, name="waiter")
h.start()
time.sleep(0.01)
w.start()
w.join()
h.join()
print("lock", planted["wait"], planted["n"])
