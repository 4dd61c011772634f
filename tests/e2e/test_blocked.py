"""pyprof record --pid with the shim on a service whose main thread stays
blocked in C for the whole run while another thread does all the work
(tests/workloads/blocked_target.py): the main thread never runs a
bytecode, so a pending call (3.9-3.13) or PEP 768's request (3.14+),
both run by the main thread between two bytecodes, would never load
the shim; the main thread makes pyprof's direct call from inside its
system call instead (collector/inject.c), and the shim's own thread
detaches (preload/attach.c).

Per interpreter, main thread in time.sleep, and in Thread.join (a
futex wait): the shim loads; N bytes(1000) kept by the worker at the
marked line are that line's live objects exactly (--sample 0: count
and bytes as the target says); after the detach /proc/PID/maps, fd and
task hold nothing of pyprof's, the target still answers, and its main
thread is still blocked: time.sleep was not cut short, and returns when
it should (its wake-up time checked).
Once (Debian's python3.11, main thread in time.sleep): kill -9 of pyprof
at many moments of the injection and while recording: the target keeps
serving, is never left stopped, its main thread still sleeps, and the
shim unloads by itself (nothing of pyprof's left, no copy in /tmp).
"""
import os
import signal
import subprocess
import sys
import time

import harness as h
from test_attach import Target, finish, report, same_state, state
from test_inject import copies, shim_mapped, start

W = "blocked_target.py"
MARK = "BLOCKED-KEEP"
N = 3000
SLEEP = 9.0     # the sleeping main thread's time.sleep, seconds


def in_syscall(pid):
    """The main thread's system call number, or None when running."""
    try:
        f = open("/proc/%d/syscall" % pid).read().split()
    except OSError:
        return None
    return int(f[0]) if f and f[0].isdigit() else None


def case(label, py, mode, meanwhile=None):
    """One target; meanwhile() runs while a sleeping one still sleeps."""
    t = "%s main thread in %s" % (label, "time.sleep" if mode == "sleep" else "Thread.join")
    tg = Target([py, h.workload_path(W), mode, str(SLEEP)])
    t0 = time.monotonic()
    try:
        if not h.check(tg.ready, t + ": target starts", ""):
            return
        time.sleep(0.3)     # the main thread reaches its call
        nr = in_syscall(tg.pid)
        base = state(tg.pid)
        trace = h.tmpfile("blk-%s-%d.pp" % (mode, tg.pid))
        p, took, err = start(tg.pid, trace, ("--sample", "0"))
        if not h.check(took is not None, t + ": the shim loads",
                       h.tail((err or b"").decode(errors="replace"))):
            finish(p)
            return
        kept = tg.ask("keep %d" % N) or ""
        rc, err2 = finish(p)
        after = state(tg.pid)
        ok, why = same_state(base, after)
        h.check(rc == 0 and ok and not shim_mapped(tg.pid),
                t + ": detach leaves maps, fds, tasks as they were",
                "rc %s %s %s" % (rc, why, h.tail(err2)))
        mine = [c for c in copies(label)
                if os.path.basename(c).startswith("libpyprof.so.%d." % p.pid)]
        h.check(not mine, t + ": no copy of the shim left in its /tmp", str(mine))
        main = tg.ask("main") or ""
        h.check(main == "sleeping" and in_syscall(tg.pid) == nr and nr is not None,
                t + ": the target answers, its main thread still blocked in its call",
                "%r, system call %s then %s, %.1f s in" %
                (main, nr, in_syscall(tg.pid), time.monotonic() - t0))
        rep, why = report(trace)
        if h.check(rep is not None, t + ": report", why):
            f, line, _ = h.marker_site(W, MARK)
            s, why = h.one_site(rep, f, line)
            n, size = (int(x) for x in kept.split()[1:3]) if kept.startswith("kept") \
                else (-1, -1)
            h.check(s is not None and s.get("live_count") == n == N and
                    s.get("live_bytes") == size,
                    t + ": the marked line holds the N objects the worker kept "
                    "(count and bytes exact)", "target %r; %s" % (kept, why or h.fmt_site(s)))
            top = (rep.get("sites") or [{}])[0]
            h.check(s is not None and top.get("line") == line and top.get("file") == f,
                    t + ": it is the top site", h.fmt_site(top))
        if meanwhile:
            meanwhile()
        if mode == "sleep":
            # time.sleep returns when it should: neither cut short nor
            # held up by more than the load's and the detach's time
            left = SLEEP + 3 - (time.monotonic() - t0)
            woke = None
            while left > 0 and woke is None:
                time.sleep(0.2)
                left -= 0.2
                a = tg.ask("main") or ""
                woke = float(a.split()[1]) if a.startswith("woke") else None
            h.check(woke is not None and SLEEP <= woke <= SLEEP + 1.0,
                    t + ": time.sleep(%g) returned in time" % SLEEP,
                    "after %s s" % woke)
    finally:
        tg.ask("quit")
        tg.close()


def killed(label, py):
    t = "%s main thread in time.sleep, kill -9" % label
    tg = Target([py, h.workload_path(W), "sleep", "600"])
    try:
        if not h.check(tg.ready, t + ": target starts", ""):
            return
        time.sleep(0.3)
        nr = in_syscall(tg.pid)
        base = state(tg.pid)
        bad, pids = [], []
        # the direct call takes ~5-50 ms from pyprof's start
        for delay in (0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.4, 0.8):
            p = subprocess.Popen([str(h.PYPROF), "record", "-o", h.tmpfile("bk.pp"),
                                  "--pid", str(tg.pid)], stderr=subprocess.DEVNULL,
                                 start_new_session=True)
            pids.append(p.pid)
            time.sleep(delay)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            st = state(tg.pid)
            if st.get("stopped") or (tg.ask("ping", timeout=10) or "") != "pong":
                bad.append("killed after %s s: stopped %s" % (delay, st.get("stopped")))
        h.check(not bad, t + " during injection: the target keeps serving, never stopped",
                "; ".join(bad[:3]))
        p, took, err = start(tg.pid, h.tmpfile("bk2.pp"))
        pids.append(p.pid)
        h.check(took is not None, t + ": the shim loads", h.tail(err.decode()))
        tg.ask("keep 2000")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        h.check(tg.ask("ping") == "pong", t + " while recording: the target keeps serving", "")
        end = time.monotonic() + 10
        while time.monotonic() < end and shim_mapped(tg.pid):
            time.sleep(0.1)
        time.sleep(0.3)
        ok, why = same_state(base, state(tg.pid))
        h.check(ok and not shim_mapped(tg.pid),
                t + ": the shim unloads itself, nothing of pyprof's left", why)
        # a pyprof killed before its direct call leaves its copy to the
        # next one, which removes it (the start above)
        mine = [c for c in copies(label) if any(
            os.path.basename(c).startswith("libpyprof.so.%d." % q) for q in pids)]
        h.check(not mine, t + ": no copy of the shim left in /tmp", str(mine))
        h.check(tg.ask("main") == "sleeping" and in_syscall(tg.pid) == nr,
                t + ": its main thread still sleeps in the same call",
                "system call %s then %s" % (nr, in_syscall(tg.pid)))
    finally:
        tg.ask("quit")
        tg.close()


def main():
    h.require_pyprof()
    # static Debian 3.11; glibc 2.31's libdl (3.9); shared libpython
    # 3.12 and 3.13; PEP 768's versions (the direct call comes first)
    want = ("py3.11-debian", "py3.9-bullseye", "py3.12", "py3.13", "py3.14-sid",
            "py3.15-sid")
    for label, py in h.interpreters():
        if label in want:
            case(label, py, "sleep", lambda: case(label, py, "join"))
        if label == "py3.11-debian":
            killed(label, py)
    h.done()


if __name__ == "__main__":
    sys.exit(main())
