"""Events on every path at once, for tests/e2e/test_drops.py.

While it runs: two CPU-bound threads hand the GIL back and forth (GIL
events), two threads take turns on a lock they hold across a short sleep
(contended lock waits), and the main thread runs collections (GC events)
maps and unmaps anonymous private memory (kernel events) and makes and
frees small lists (allocation records for the shim's ring). It writes the file given by
--ready once all of that is going.
Usage: drops.py --seconds S --ready FILE
"""
import argparse
import gc
import mmap
import sys
import threading
import time


def spin(stop):
    n = 0
    while not stop.is_set():
        n += sum(range(50))


def contend(lock, stop):
    while not stop.is_set():
        with lock:
            time.sleep(0.0002)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    sys.setswitchinterval(0.0001)
    stop = threading.Event()
    lock = threading.Lock()
    threads = [threading.Thread(target=spin, args=(stop,)) for _ in range(2)]
    threads += [threading.Thread(target=contend, args=(lock, stop)) for _ in range(2)]
    for t in threads:
        t.start()
    with open(args.ready, "w") as f:
        f.write("ready\n")
    end = time.monotonic() + args.seconds
    rounds = 0
    while time.monotonic() < end:
        m = mmap.mmap(-1, 1 << 16, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.close()
        junk = [[i] for i in range(200)]
        del junk
        gc.collect(0)
        rounds += 1
    stop.set()
    for t in threads:
        t.join()
    print("drops: %d rounds" % rounds)


if __name__ == "__main__":
    main()
