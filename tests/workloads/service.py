"""A service-like loop with three planted leaks and three look-alikes.

Each request exercises:
  LEAK-CACHE    an unbounded response cache: one 1-4 KiB str per request
  LEAK-CLOSURE  a closure capturing a 4 KiB list, appended to a global list
                of callbacks every CLOSURE_EVERY requests
  LEAK-CYCLE    a pair of objects pointing to each other, holding a payload,
                kept alive by a global registry every CYCLE_EVERY requests
  CHURN         a 256 KiB temporary, freed before the request ends
  LRU-VALUE     a bounded LRU cache (OrderedDict capped at LRU_CAP entries,
                full after LRU_CAP requests, flat from then on)
  GC-CYCLE      a request-scoped cycle that only the cycle GC frees

The end-to-end tests find the planted lines by their marker comments, so
keep exactly one allocation on each marked line and no marker elsewhere.
Usage: service.py [--seconds S] [--rate REQ_PER_S] [--lru-cap N] [--stop-file F]
                  [--gc-threshold N]  (gen-0 threshold; 3.13+ default 2000)
                  [--gc-threshold1 N]  (gen-1 threshold: gen-0 collections
                                        per gen-1 one; default 10)
"""
import argparse
import collections
import gc
import os
import sys
import time

CLOSURE_EVERY = 4
CYCLE_EVERY = 2
LRU_CAP = 128
CHURN_BYTES = 256 * 1024
# Sizes live in globals: b"x" * <literal> up to 4 KiB would be folded into
# one constant at compile time and allocate nothing per request.
CYCLE_PAYLOAD = 1536
LRU_VALUE_BYTES = 2048
GC_PAYLOAD = 2048

RESPONSE_CACHE = {}
CALLBACKS = []
SESSIONS = []
LRU = collections.OrderedDict()


class Session:
    def __init__(self, rid):
        self.rid = rid
        self.peer = None
        self.payload = None


def cache_response(rid):
    size = 1024 + (rid * 37) % 3072
    body = "r" * size  # LEAK-CACHE
    RESPONSE_CACHE[rid] = body


def register_callback(rid):
    rows = [rid] * 512  # LEAK-CLOSURE

    def on_done():
        return len(rows)

    CALLBACKS.append(on_done)


def track_session(rid):
    a = Session(rid)
    b = Session(rid)
    a.peer = b
    b.peer = a
    a.payload = b"s" * CYCLE_PAYLOAD  # LEAK-CYCLE
    SESSIONS.append(a)


def process_upload(rid):
    scratch = b"u" * CHURN_BYTES  # CHURN
    return scratch.count(b"x", rid % 1024, rid % 1024 + 64)


def lookup_lru(rid):
    key = rid % 100000
    value = LRU.get(key)
    if value is None:
        value = b"l" * LRU_VALUE_BYTES  # LRU-VALUE
        LRU[key] = value
        if len(LRU) > LRU_CAP:
            LRU.popitem(last=False)
    else:
        LRU.move_to_end(key)
    return len(value)


def scratch_graph(rid):
    a = Session(rid)
    b = Session(rid)
    a.peer = b
    b.peer = a
    a.payload = b"g" * GC_PAYLOAD  # GC-CYCLE
    return rid


def handle_request(rid):
    cache_response(rid)
    if rid % CLOSURE_EVERY == 0:
        register_callback(rid)
    if rid % CYCLE_EVERY == 0:
        track_session(rid)
    process_upload(rid)
    lookup_lru(rid)
    scratch_graph(rid)


def serve(seconds, rate, stop_file=None):
    start = time.monotonic()
    end = start + seconds
    rid = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if stop_file and rid % 100 == 0 and os.path.exists(stop_file):
            break
        due = start + rid / rate
        if due > now:
            time.sleep(due - now)
        handle_request(rid)
        rid += 1
    return rid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.5)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--lru-cap", type=int, default=LRU_CAP)
    ap.add_argument("--gc-threshold", type=int, default=0)
    ap.add_argument("--gc-threshold1", type=int, default=0)
    ap.add_argument("--stop-file", help="end early once this file exists")
    args = ap.parse_args()
    globals()["LRU_CAP"] = args.lru_cap
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    if args.gc_threshold1:
        t = gc.get_threshold()
        gc.set_threshold(t[0], args.gc_threshold1, *t[2:])
    n = serve(args.seconds, args.rate, args.stop_file)
    print(
        "service: %d requests, cache=%d callbacks=%d sessions=%d lru=%d"
        % (n, len(RESPONSE_CACHE), len(CALLBACKS), len(SESSIONS), len(LRU))
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
