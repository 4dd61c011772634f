# Waits that are not contention, for tests/e2e/test_waits.py: the main
# thread blocks in Queue.get (10 items a producer puts 20 ms after it
# waits for each), in Event.wait (set 100 ms later) and in
# Future.result (a pool task of 60 ms), each at a marked line and timed
# with perf_counter. Prints
# "wait MARK SECONDS COUNT" per kind.
import concurrent.futures
import queue
import threading
import time

q = queue.Queue()
ev = threading.Event()
took = {}


def producer():
    for i in range(10):
        # each item 20 ms after the consumer waits for it: a get that
        # found an item there would not wait (a loaded machine can keep
        # the consumer off the CPU for longer than a fixed 20 ms)
        while not q.not_empty._waiters:
            time.sleep(0.001)
        time.sleep(0.02)
        q.put(i)
    time.sleep(0.1)
    ev.set()


p = threading.Thread(target=producer, name="producer")
p.start()
for i in range(10):
    t = time.perf_counter()
    q.get()                                             # WAIT-QUEUE
    w, n = took.get("WAIT-QUEUE", (0.0, 0))
    took["WAIT-QUEUE"] = (w + time.perf_counter() - t, n + 1)
t = time.perf_counter()
ev.wait()                                               # WAIT-EVENT
took["WAIT-EVENT"] = (time.perf_counter() - t, 1)
p.join()
with concurrent.futures.ThreadPoolExecutor(1) as pool:
    f = pool.submit(time.sleep, 0.06)
    t = time.perf_counter()
    f.result()                                          # WAIT-FUTURE
    took["WAIT-FUTURE"] = (time.perf_counter() - t, 1)
for mark, (w, n) in took.items():
    print("wait", mark, w, n)
