"""pyprof's bundled demo: a small request loop with a leak in it.

Every request renders a page (temporary work, freed), keeps a session in
a bounded LRU (not a leak) and, by mistake, memoizes every rendered page
in a dict that is never pruned (the leak). A worker thread handles a
lock-protected counter, so the threads view has something to show.
Runs for --seconds (default 30).
"""
import argparse
import collections
import threading
import time

PAGE_CACHE = {}
SESSIONS = collections.OrderedDict()
STATS_LOCK = threading.Lock()
STATS = {"requests": 0}


def render(rid):
    rows = ["<tr><td>%d</td><td>%s</td></tr>" % (i, "x" * 40) for i in range(40)]
    page = "<table>" + "".join(rows) + "</table>"
    PAGE_CACHE[rid] = page  # the leak: nothing ever evicts this
    return page


def touch_session(rid):
    key = rid % 500
    SESSIONS[key] = bytearray(1024)
    SESSIONS.move_to_end(key)
    if len(SESSIONS) > 400:
        SESSIONS.popitem(last=False)


def handle(rid):
    page = render(rid)
    touch_session(rid)
    with STATS_LOCK:
        STATS["requests"] += 1
    return len(page)


def stats_worker(stop):
    while not stop.is_set():
        with STATS_LOCK:
            time.sleep(0.002)
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    stop = threading.Event()
    worker = threading.Thread(target=stats_worker, args=(stop,), name="stats")
    worker.start()
    end = time.monotonic() + args.seconds
    rid = 0
    while time.monotonic() < end:
        handle(rid)
        rid += 1
        time.sleep(0.0005)
    stop.set()
    worker.join()
    print("demo: %d requests, %d cached pages" % (rid, len(PAGE_CACHE)))


if __name__ == "__main__":
    main()
