"""The syscall and switch hooks pyprof leaves on the machine
(ebpf/sys.bpf.c): a raw sys_enter or sys_exit program runs on every
syscall of every process while attached (and puts them all on the
kernel's slow syscall path), a sched_switch program on every switch,
so a target gets one of each, whatever uses them, and only when
something does: the syscall pair for the kernel heap view (kmem), the
switch for futex waits (the GIL's futex mode, locks). Counted from
pyprof's own bpf link fds (/proc/PID/fdinfo: link_type raw_tracepoint,
tp_name), on the interpreter running this test (the hooks do not
depend on its version):
- --pid --no-inject (GIL futex mode, locks, kmem with first-touch
  faults): one sys_enter, one sys_exit, one sched_switch, one
  page_fault_user;
- locks and kmem left out (bench knob PYPROF_TEST_BPF_OFF), GIL futex
  mode: the sched_switch only; locks and GIL off: the syscall pair only;
- wrap mode (GIL uprobes, locks, kmem without faults): one sys_enter,
  one sys_exit, one sched_switch, no page_fault_user (the fault program
  only when asked);
- --pid --no-inject --gil off, locks and kmem left out: none at all;
and the futex mode's GIL waits still come through them (a report of
tests/workloads/stalls_gil.py, four CPU-bound threads, has GIL waits).
"""
import os
import select
import signal
import subprocess
import sys
import time

import harness as h

PY = sys.executable


def hooks(pid):
    """tp_name -> count of pyprof's raw tracepoint links."""
    n = {}
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if info.get("link_type", "").strip() == "raw_tracepoint":
            tp = info.get("tp_name", "?").strip()
            n[tp] = n.get(tp, 0) + 1
    return n


def attached(p, timeout=30):
    """Wait for pyprof's PYPROF_DEBUG "attached to pid" line."""
    err, deadline = b"", time.monotonic() + timeout
    while b"attached to pid" not in err and time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], 1)
        if r:
            c = os.read(p.stderr.fileno(), 4096)
            if not c:
                break
            err += c
    return b"attached to pid" in err, err.decode(errors="replace")


def attach_case(name, args, env, want):
    # attached once its interpreter is up (before that pyprof refuses)
    t = subprocess.Popen([PY, "-c", "import time; print('ready', flush=True); time.sleep(120)"],
                         stdout=subprocess.PIPE)
    t.stdout.readline()
    p = subprocess.Popen([str(h.PYPROF), "record", "-o", h.tmpfile(name + ".pp"),
                          "--pid", str(t.pid), "--no-inject"] + args,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=dict(os.environ, PYPROF_DEBUG="1", **env))
    try:
        ok, err = attached(p)
        if h.check(ok, "sys hooks %s: attached" % name, h.tail(err)):
            got = hooks(p.pid)
            got = {k: got.get(k, 0) for k in want}
            h.check(got == want, "sys hooks %s: %s" % (name, want), "pyprof holds %s" % got)
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        t.kill()
        t.wait()


def wrap_case():
    want = {"sys_enter": 1, "sys_exit": 1, "sched_switch": 1, "page_fault_user": 0}
    p = subprocess.Popen([str(h.PYPROF), "record", "-o", h.tmpfile("wrap.pp"), "--",
                          PY, "-c", "import time; time.sleep(8)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got, deadline = {}, time.monotonic() + 30
    try:
        while time.monotonic() < deadline and p.poll() is None:
            got = hooks(p.pid)
            if got.get("sys_enter") and got.get("sched_switch") and \
                    got.get("sched_process_fork"):
                time.sleep(0.5)     # every object in (the GIL's come last)
                got = hooks(p.pid)
                break
            time.sleep(0.1)
        got = {k: got.get(k, 0) for k in want}
        h.check(got == want, "sys hooks wrap: %s" % want, "pyprof holds %s" % got)
    finally:
        p.wait(60)


def main():
    h.require_pyprof()
    attach_case("attach", [], {},
                {"sys_enter": 1, "sys_exit": 1, "sched_switch": 1, "page_fault_user": 1})
    attach_case("futex waits only", [], {"PYPROF_TEST_BPF_OFF": "locks+kmem"},
                {"sys_enter": 0, "sys_exit": 0, "sched_switch": 1, "page_fault_user": 0})
    attach_case("kmem only", ["--gil", "off"], {"PYPROF_TEST_BPF_OFF": "locks"},
                {"sys_enter": 1, "sys_exit": 1, "sched_switch": 0, "page_fault_user": 1})
    attach_case("none needed", ["--gil", "off"], {"PYPROF_TEST_BPF_OFF": "locks+kmem"},
                {"sys_enter": 0, "sys_exit": 0, "sched_switch": 0, "page_fault_user": 0})
    wrap_case()
    r = h.record(PY, "stalls_gil.py", args=["1"], extra_pyprof_args=["--gil", "futex"])
    gil = (r.report or {}).get("gil") or {}
    waits = sum(t.get("wait_s", 0) or 0 for t in gil.get("threads", []))
    h.check(r.report is not None and waits > 0,
            "sys hooks: --gil futex waits come through them (%.3f s)" % waits,
            str(r.why) + " " + h.tail(str(gil)))
    h.done()


if __name__ == "__main__":
    main()
