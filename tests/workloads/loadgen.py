"""A bounded local load generator (stdlib only) for tests/workloads/webapp.py.

  loadgen.py URL [--threads N] [--seconds S | --requests N] [--keepalive]
             [--timeout S] [--mix PATH:WEIGHT,...] [--leak-every N]

Each thread sends requests in a loop (the paths in --mix by weight, in a
fixed order; /leak once every --leak-every requests of the whole run if
given), over one kept-alive connection or a new one per request, until
the time or the request count is reached, or SIGINT (ends the run early,
the figures still printed). At the end it prints one JSON
line: requests, ok, failures (a non-2xx answer or a broken connection),
timeouts, seconds, throughput (ok requests per second), latency
percentiles in ms, and the first few errors. Exit status 0.
"""
import argparse
import http.client
import json
import signal
import socket
import sys
import threading
import time
from urllib.parse import urlsplit


def parse_mix(text):
    paths = []
    for part in text.split(","):
        path, _, w = part.partition(":")
        paths += [path] * max(1, int(w or 1))
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--requests", type=int, default=0)
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--mix", default="/:3,/items/20:2,/echo:1")
    ap.add_argument("--leak-every", type=int, default=0)
    a = ap.parse_args()
    if not a.seconds and not a.requests:
        a.seconds = 5.0
    u = urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    paths = parse_mix(a.mix)
    lock = threading.Lock()
    st = {"requests": 0, "ok": 0, "failures": 0, "timeouts": 0}
    lat = []
    errors = []
    started = [0]
    deadline = time.monotonic() + a.seconds if a.seconds else None
    stop = [False]
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))

    def take():
        """The next request number, or None when the run is over."""
        with lock:
            if stop[0]:
                return None
            if a.requests and started[0] >= a.requests:
                return None
            if deadline and time.monotonic() >= deadline:
                return None
            started[0] += 1
            return started[0]

    def worker(k):
        conn = None
        i = k
        while True:
            n = take()
            if n is None:
                break
            if a.leak_every and n % a.leak_every == 0:
                path = "/leak"
            else:
                path = paths[i % len(paths)]
                i += 1
            t0 = time.monotonic()
            what = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=a.timeout)
                if path == "/echo":
                    conn.request("POST", path, body=b"x" * 512,
                                 headers={"Connection": "keep-alive" if a.keepalive else "close"})
                else:
                    conn.request("GET", path,
                                 headers={"Connection": "keep-alive" if a.keepalive else "close"})
                r = conn.getresponse()
                r.read()
                if not 200 <= r.status < 300:
                    what = ("failures", "%s: HTTP %d" % (path, r.status))
                if not a.keepalive or r.will_close:
                    conn.close()
                    conn = None
            except (socket.timeout, TimeoutError) as e:
                what = ("timeouts", "%s: timeout %s" % (path, e))
            except (OSError, http.client.HTTPException) as e:
                what = ("failures", "%s: %s: %s" % (path, type(e).__name__, e))
            dt = time.monotonic() - t0
            if what and conn is not None:
                conn.close()
                conn = None
            with lock:
                st["requests"] += 1
                if what:
                    st[what[0]] += 1
                    if len(errors) < 5:
                        errors.append(what[1])
                else:
                    st["ok"] += 1
                    lat.append(dt)
        if conn is not None:
            conn.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - t0
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None

    st.update(seconds=round(secs, 3), throughput=round(st["ok"] / secs, 1) if secs else 0,
              p50_ms=pct(0.5), p99_ms=pct(0.99), max_ms=pct(1.0), errors=errors)
    print(json.dumps(st), flush=True)


if __name__ == "__main__":
    main()
