"""A stack first seen while the shim drops records is not lost for good.

Per interpreter (the stack walkers differ by version), tests/workloads/
defs_lost.py under `pyprof record --ring-size 65536`: pyprof is stopped
(SIGSTOP) for 2.2 s; meanwhile the ring fills, the shim drops, and a
function the program never ran before runs for the first time (its
function and stack definitions cannot go out); pyprof is continued, and
the same function then keeps 500 blocks of 1000 bytes at the same line:
- the report counts the drops (events.dropped > 0);
- that line holds the 500 blocks, in that function (a definition lost
  once must not leave that stack without its function, so that every
  later block made there had no Python frame), and at most the 10 made
  there while dropping (a block whose free was lost stays counted);
- the trace reads to its end (a lost definition must not leave a gap in
  the ids: readers bound the gaps, and a reader gave up on the rest of
  a trace whose drops had lasted a second).
"""
import json
import os
import signal
import subprocess
import sys
import time

import harness as h

W = "defs_lost.py"
KEEP, SIZE = 500, 1000
PYS = ("py3.11-debian", "py3.9", "py3.12", "py3.13")  # files in the host's /tmp


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        if label in PYS:
            one(label, py)
    h.done()


def one(label, py):
    t = "%s definitions lost" % label
    files = [h.tmpfile("%s-%s" % (n, label)) for n in ("ready", "go", "resume")]
    for f in files:
        if os.path.exists(f):
            os.unlink(f)
    trace = h.tmpfile("defs-%s.pyprof" % label)
    p = subprocess.Popen([str(h.PYPROF), "record", "-o", trace, "--ring-size", "65536", "--",
                          py, h.workload_path(W)] + files + [str(KEEP)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 60
    while not os.path.exists(files[0]) and time.monotonic() < end and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGSTOP)
    open(files[1], "w").close()
    time.sleep(2.2)
    p.send_signal(signal.SIGCONT)
    time.sleep(0.3)
    open(files[2], "w").close()
    try:
        out, err = p.communicate(timeout=h.CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    if not h.check(p.returncode == 0 and b"kept %d" % KEEP in out,
                   t + ": the program ran to its end", "rc %s; %s" % (
                       p.returncode, h.tail(err.decode(errors="replace")))):
        return
    r = h.pyprof("report", trace, "--format", "json")
    h.check(r.rc == 0 and "invalid record" not in r.err, t + ": the trace reads to its end",
            h.tail(r.err))
    try:
        rep = json.loads(r.stdout)
    except ValueError:
        h.check(False, t + ": report", h.tail(r.err))
        return
    h.check(rep["events"]["dropped"] > 0, t + ": the shim dropped records while pyprof was "
            "stopped", str(rep["events"]))
    f, ln, fn = h.marker_site(W, "FIRST-LINE")
    site, why = h.one_site(rep, f, ln)
    s = site or {}
    n = s.get("live_count") or 0
    h.check(s.get("function") == fn and KEEP <= n <= KEEP + 10 and
            n * SIZE <= (s.get("live_bytes") or 0) <= n * (SIZE + 256),
            t + ": the line first run while dropping holds its %d blocks" % KEEP,
            why or h.fmt_site(site))


if __name__ == "__main__":
    sys.exit(main())
