"""Every lost event counted, by source (README, "Drops").

Per interpreter (Debian's static python3.11 and build/tests/pyembed3.11 on
its shared libpython3.11: the probes attach differently):
- tests/workloads/drops.py under `pyprof record --ring-size 65536` with
  the test knob PYPROF_TEST_BPF_RING=4096 (tiny eBPF rings), and pyprof
  stopped (SIGSTOP) for 1.6 s while the workload runs (the shim waits up
  to 1 s for a silent collector, then drops; README): the
  report is valid JSON, `events.dropped_by_source` is shim, bpf and
  trace_write, `events.dropped_bpf` is gil, gc, locks and kmem; shim and
  each eBPF ring are > 0, trace_write is 0, bpf is the sum of the rings
  and `events.dropped` the sum of the sources; the text report and the
  viewer's header (batch replay, last frame) show that total;
- the same workload without the knobs and without a stall drops nothing.
Once: `pyprof record` into a 512 KiB tmpfs (mounted here, unmounted after):
the command's exit status (0), a message that gives the number of records
lost, a
readable trace whose report counts them as trace_write (the same number)
and whose `events.dropped` is the sum.
"""
import json
import os
import re
import signal
import subprocess
import time

import harness as h

PYS = [("py3.11-debian", "/usr/bin/python3.11"),
       ("py3.11-embed", h.interpreter_path("py3.11-embed"))]
SOURCES = ["shim", "bpf", "trace_write"]  # events.dropped_by_source (cli.md)
RINGS = ["gil", "gc", "locks", "kmem"]  # events.dropped_bpf


def report(trace):
    """(JSON report, text report, why)"""
    rj = h.pyprof("report", trace, "--format", "json")
    rt = h.pyprof("report", trace)
    try:
        return json.loads(rj.stdout), rt.out, None
    except ValueError as e:
        return None, rt.out, "report rc %s, not JSON (%s): %s" % (rj.rc, e, h.tail(rj.err))


def stalled_run(py, trace, knobs, stall):
    """pyprof record on drops.py; SIGSTOP pyprof for stall seconds."""
    ready = trace + ".ready"
    env = dict(os.environ)
    if knobs:
        env.update(PYPROF_TEST_BPF_RING="4096")
    cmd = [str(h.PYPROF), "record", "-o", trace, "--ring-size", "65536", "--", py,
           h.workload_path("drops.py"), "--seconds", "3", "--ready", ready]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        if stall and os.path.exists(ready):
            time.sleep(0.2)
            os.kill(p.pid, signal.SIGSTOP)
            time.sleep(stall)
            os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=h.CMD_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), \
        os.path.exists(ready)


def by_source(ev):
    return (ev or {}).get("dropped_by_source") or {}


def forced(label, py):
    t = "%s drops" % label
    trace = h.tmpfile("drops-%s.pyprof" % label)
    rc, out, err, ready = stalled_run(py, trace, True, 1.6)
    h.check(rc == 0 and ready, t + ": the workload ran and pyprof exited 0",
            "rc %s, ready %s; %s" % (rc, ready, h.tail(err)))
    rep, text, why = report(trace)
    if not h.check(rep is not None, t + ": the report is valid JSON", why):
        return
    ev = rep.get("events") or {}
    src = by_source(ev)
    rings = ev.get("dropped_bpf") or {}
    print("# %s: dropped %s by source %s, eBPF rings %s" % (t, ev.get("dropped"), src, rings))
    h.check(sorted(src) == sorted(SOURCES), t + ": dropped_by_source is shim, bpf, trace_write",
            sorted(src))
    h.check(sorted(rings) == sorted(RINGS), t + ": dropped_bpf names the four eBPF rings",
            sorted(rings))
    h.check(src.get("shim", 0) > 0, t + ": shim ring drops counted", src)
    for name in RINGS:
        h.check(rings.get(name, 0) > 0, "%s: eBPF %s ring drops counted" % (t, name), rings)
    h.check(src.get("bpf") == sum(rings.values()), t + ": bpf is the sum of the rings",
            "%s %s" % (src, rings))
    h.check(src.get("trace_write") == 0, t + ": no trace_write drops (the disk kept up)", src)
    h.check(ev.get("dropped") == sum(src.values()) and ev.get("dropped", 0) > 0,
            t + ": events.dropped is the sum of the sources",
            "dropped %s, sum %s" % (ev.get("dropped"), sum(src.values())))
    m = re.search(r"dropped (\d+) \(([^)]*)\)", text)
    h.check(m and int(m.group(1)) == ev.get("dropped") and "bpf_gc" in m.group(2),
            t + ": the text report gives the total and the sources",
            m.group(0) if m else h.tail(text))
    r = h.pyprof("view", trace, "-b", "-d", "10")
    heads = re.findall(r"\bDrops (\d+)", r.out)
    h.check(r.rc == 0 and heads and int(heads[-1]) == ev.get("dropped"),
            t + ": the viewer's header shows the total",
            "rc %s; header drops %s, report %s" % (r.rc, heads[-1:], ev.get("dropped")))
    h.check(rep.get("gc", {}) and rep.get("sites"), t + ": the rest of the report is there",
            list(rep))

    t = "%s no drops" % label
    trace = h.tmpfile("nodrops-%s.pyprof" % label)
    rc, out, err, ready = stalled_run(py, trace, False, 0)
    rep, text, why = report(trace)
    ev = (rep or {}).get("events") or {}
    h.check(rc == 0 and rep is not None and ev.get("dropped") == 0 and
            sorted(by_source(ev)) == sorted(SOURCES) and not any(by_source(ev).values()) and
            not any((ev.get("dropped_bpf") or {}).values()),
            t + ": without the knobs and the stall nothing is dropped",
            "rc %s; %s %s" % (rc, ev, why or h.tail(err)))


def full_disk(label, py):
    t = "%s full disk" % label
    mnt = h.tmpfile("full")
    os.makedirs(mnt, exist_ok=True)
    m = h.run(["mount", "-t", "tmpfs", "-o", "size=512k", "pyprof-test", mnt])
    if not h.check(m.rc == 0, t + ": a 512 KiB tmpfs is mounted", h.tail(m.err)):
        return
    try:
        trace = os.path.join(mnt, "t.pyprof")
        r = h.pyprof("record", "-o", trace, "--", py, h.workload_path("service.py"),
                     "--seconds", "2")
        lost = re.search(r"writing .* failed \(No space left on device\): (\d+) records lost",
                         r.err)
        h.check(r.rc == 0 and lost, t + ": the command's status (0) and the number of "
                "records lost", "rc %s; %s" % (r.rc, h.tail(r.err)))
        rep, text, why = report(trace)
        if not h.check(rep is not None, t + ": the trace is readable, the report valid JSON",
                       why):
            return
        ev = rep.get("events") or {}
        src = by_source(ev)
        print("# %s: dropped %s by source %s" % (t, ev.get("dropped"), src))
        h.check(lost and src.get("trace_write") == int(lost.group(1)),
                t + ": trace_write counts the records lost",
                "trace_write %s, message %s" % (src.get("trace_write"),
                                                lost.group(1) if lost else None))
        h.check(ev.get("dropped") == sum(src.values()), t + ": events.dropped is the sum",
                ev)
    finally:
        h.run(["umount", mnt])


def main():
    h.require_pyprof()
    for label, py in PYS:
        if not h.check(os.access(py, os.X_OK), "%s drops: interpreter present" % label, py):
            continue
        forced(label, py)
    full_disk(*PYS[0])
    h.done()


if __name__ == "__main__":
    main()
