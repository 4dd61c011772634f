"""pyprof --pid with the shim sent to a target that runs no Python code
while attached: its report must not pretend the shim loaded.

Per interpreter, tests/workloads/gil_held_sleep.py: the main thread
sleeps 4 s in C holding the GIL (ctypes.PyDLL), so no thread can run a
bytecode and the shim, which loads between two bytecodes, cannot load.
`pyprof record --pid --duration 2` (the shim asked for, the default):
- exits 0 and says on stderr that it waited for the target;
- the JSON's attach key says shim_loaded false, sees no allocations and
  names none as seen; no site of the workload's file;
- the text report and the viewer's batch frame say the shim has not
  loaded, and do not say it loaded;
- the target carries on: its sleep lasted its 4 s (not cut short), its
  worker thread runs afterwards, and after pyprof is gone and the target
  ran its pending work nothing of pyprof's is left (maps, fds, tasks,
  the shim's copy in the target's /tmp) and it is not stopped.
"""
import os
import sys
import time

import harness as h
from test_attach import Target, report, same_state, state
from test_inject import copies

W = "gil_held_sleep.py"
SECS = 4.0


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
    h.done()


def one(label, py):
    t = "%s shim never loaded" % label
    tg = Target([py, h.workload_path(W), str(SECS)])
    if not h.check(tg.ready, t + ": target started", "no 'ready'"):
        return tg.close()
    trace = h.tmpfile("unloaded-%s.pyprof" % label)
    try:
        before = state(tg.pid)
        had = set(copies(label))
        tg.p.stdin.write(b"go\n")
        tg.p.stdin.flush()
        time.sleep(0.3)     # inside its sleep, the GIL held
        rec = h.pyprof("record", "-o", trace, "--pid", str(tg.pid), "--duration", "2",
                       timeout=60)
        h.check(rec.rc == 0 and os.path.exists(trace), t + ": record exits 0 with a trace",
                "rc %s: %s" % (rec.rc, h.tail(rec.err)))
        rep, why = report(trace)
        att = (rep or {}).get("attach") or {}
        h.check(rep is not None and att.get("mode") == "shim" and
                att.get("shim_loaded") is False and "allocation" not in att.get("sees", "x")
                and "never loaded" in att.get("cannot_see", ""),
                t + ": JSON attach says the shim did not load", why or str(att))
        mine = [s for s in (rep or {}).get("sites") or [] if s.get("file", "").endswith(W)]
        h.check(rep is not None and not mine, t + ": no site of the target's file",
                str(mine[:2]))
        txt = h.pyprof("report", trace).out
        h.check("never loaded" in txt and "the shim loaded" not in txt,
                t + ": text report says the shim never loaded", h.tail(txt))
        frame = h.pyprof("view", trace, "-b", "-n", "1").out
        h.check("shim has not loaded" in frame, t + ": viewer says the shim has not loaded",
                h.tail(frame))
        alive = tg.read(30)
        parts = (alive or "").split()
        h.check(len(parts) == 3 and parts[0] == "alive" and int(parts[1]) > 0 and
                float(parts[2]) >= SECS - 0.05,
                t + ": target slept its %.0f s, then its thread ran on" % SECS, str(alive))
        time.sleep(0.5)     # its pending work (the load that finds no file) ran
        ok, why = same_state(before, state(tg.pid))
        left = sorted(set(copies(label)) - had)
        h.check(ok and not left, t + ": nothing of pyprof's left in the target",
                why or "copies left: %s" % left)
    finally:
        tg.close()


if __name__ == "__main__":
    sys.exit(main())
