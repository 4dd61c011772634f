"""A short run with a bit of every record kind, for fuzz_trace's seeds
(scripts/fuzz.sh --seeds): allocations and frees, a big block (mmap),
growth (realloc), a collection, two threads on one lock, a wait."""
import gc
import threading

KEEP = []
LOCK = threading.Lock()


def work(n):
    for i in range(n):
        KEEP.append(bytes(64 + i))
        with LOCK:
            KEEP.append("x" * (i % 7))


class Node:
    def __init__(self):
        self.peer = self


for i in range(20):
    Node()
big = bytearray(300000)
grow = []
for i in range(200):
    grow.append(i)
gc.collect()
threads = [threading.Thread(target=work, args=(50,)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
del big
