"""Named threads, each making a known number of known-size blocks at its
own marked line, all kept alive until exit.

  thread name    marker         blocks  payload bytes (each + 33 header)
  alloc-alpha    THREAD-ALPHA   11      65536
  alloc-beta     THREAD-BETA    13      98304
  alloc-gamma    THREAD-GAMMA   17      163840
  alloc-delta... THREAD-DELTA   19      300      (a pymalloc-sized block)

The delta thread's name is longer than the text report's name column
(32 characters) and not ASCII.

The threads wait for each other on barriers, so all four are alive at once
both while allocating and just before they end.
"""
import sys
import threading

# a name longer than the text report's column, not ASCII
DELTA = "alloc-delta \u6570\u636e, a thread whose name is too long for a column \u2603"

SPECS = {
    "alloc-alpha": (11, 65536),
    "alloc-beta": (13, 98304),
    "alloc-gamma": (17, 163840),
    DELTA: (19, 300),
}

KEEP = {name: [] for name in SPECS}
START = threading.Barrier(len(SPECS))
DONE = threading.Barrier(len(SPECS))


def work_alpha(keep, count, size):
    for _ in range(count):
        block = b"a" * size  # THREAD-ALPHA
        keep.append(block)


def work_beta(keep, count, size):
    for _ in range(count):
        block = b"b" * size  # THREAD-BETA
        keep.append(block)


def work_gamma(keep, count, size):
    for _ in range(count):
        block = b"c" * size  # THREAD-GAMMA
        keep.append(block)


def work_delta(keep, count, size):
    for _ in range(count):
        block = b"d" * size  # THREAD-DELTA
        keep.append(block)


WORK = {
    "alloc-alpha": work_alpha,
    "alloc-beta": work_beta,
    "alloc-gamma": work_gamma,
    DELTA: work_delta,
}


def run(name):
    count, size = SPECS[name]
    START.wait()
    WORK[name](KEEP[name], count, size)
    DONE.wait()


def main():
    threads = [threading.Thread(target=run, args=(name,), name=name) for name in SPECS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in SPECS:
        print("threads: %s %d blocks" % (name, len(KEEP[name])))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
