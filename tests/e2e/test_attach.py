"""pyprof --pid PID (eBPF only, nothing injected) on a running target,
tests/workloads/attach_target.py, which idles until told on stdin.

Per interpreter (the chroot one is in another mount namespace):
- record --pid attaches (reported within ATTACH_S), detaches on SIGINT
  with exit 0, and /proc/PID/maps, fd and task hold nothing of pyprof's
  during and after (the kernel's own "[uprobes]" page aside);
- GC collections per generation during the window equal what
  gc.callbacks counted in the target; the planted lock contention is
  the top lock, at its line, with its wait (10%) and at least one
  contention per blocking acquire;
- 16 MiB grown after attach (1 MiB blocks, each its own mapping) shows
  in heap.kernel and at its line (the Python stack read in BPF); the
  report says the mode ("attach" key) and what it cannot see;
- 16 MiB mapped before attach, first written after it: its 4096 pages
  (first-touch page faults) at the writing line, and the grown mappings'
  own pages not counted twice; its second half given back by madvise:
  those pages free again;
- a thread started while attached and renamed by itself (prctl) later
  carries that name in the report;
- a second pyprof on the same pid is refused with one line;
- pyprof killed -9 while recording: the target keeps serving, is left
  clean, and the trace reads up to its last chunk.
Once: 20 attach/detach in a row on one process; a target in a new PID
namespace; q in the interactive viewer (tmux); refusals (nonexistent
pid, non-Python process, pyprof as nobody without CAP_BPF, nobody with
CAP_BPF on root's process, a process already wrapped by pyprof): exit 1
and one line each, the target never stopped.
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import harness as h

W = "attach_target.py"
MARK = "PLANTED_LOCK"
GROW_MIB = 16
TOUCH_MIB = 16
ATTACH_S = 5.0     # generous: the machine is shared; typical is 0.2-1 s
REPEAT = 20


class Target:
    """The workload, talked to line by line."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.p.pid
        self.ready = self.read(30) == "ready"

    def read(self, timeout=30):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        return self.p.stdout.readline().decode().strip() if r else None

    def ask(self, cmd, timeout=60):
        try:
            self.p.stdin.write((cmd + "\n").encode())
            self.p.stdin.flush()
        except OSError:
            return None
        return self.read(timeout)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def state(pid):
    """What a process holds that pyprof could leave behind."""
    try:
        # named mappings: what pyprof could leave (a shim, a memfd ring);
        # anonymous ones come and go with the target's own heap. The
        # kernel's out-of-line page for probed instructions ("[uprobes]",
        # made on a first probe hit, kept for the process) is the kernel's
        maps = set(l.split(None, 5)[5].strip() for l in open("/proc/%d/maps" % pid)
                   if len(l.split(None, 5)) > 5)
        maps = sorted(maps - {"[uprobes]"})
        fds = sorted(os.listdir("/proc/%d/fd" % pid))
        fdt = sorted(filter(None, (fd_target(pid, f) for f in fds)))
        tasks = sorted(os.listdir("/proc/%d/task" % pid))
        st = [l for l in open("/proc/%d/status" % pid) if l.startswith("State:")][0]
    except OSError as e:
        return {"error": str(e)}
    return {"maps": maps, "fds": fdt, "tasks": tasks, "stopped": "(stopped)" in st or
            "(tracing stop)" in st}


def fd_target(pid, fd):
    """What fd names, or None when it closed meanwhile (a busy target)."""
    try:
        return os.readlink("/proc/%d/fd/%s" % (pid, fd))
    except FileNotFoundError:
        return None


def same_state(a, b):
    if "error" in a or "error" in b:
        return False, "cannot read: %s %s" % (a.get("error"), b.get("error"))
    # only what is new could be pyprof's (the target's own threads end)
    for k in ("maps", "fds", "tasks"):
        extra = sorted(set(map(str, b[k])) - set(map(str, a[k])))
        if extra:
            return False, "new %s: %s" % (k, extra[:5])
    if b["stopped"]:
        return False, "target is stopped"
    return True, ""


def start_attach(pid, trace, extra=(), inject=False):
    """pyprof record --pid; returns (Popen, seconds to attached or None).
    With inject, p.loaded() waits (up to 15 s) for the shim to be loaded."""
    env = dict(os.environ, PYPROF_DEBUG="1")
    t0 = time.monotonic()
    # nothing injected unless asked (test_inject.py loads the shim)
    mode = [] if inject else ["--no-inject"]
    p = subprocess.Popen([str(h.PYPROF), "record", "-o", trace, "--pid", str(pid)] +
                         mode + list(extra), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    err = b""
    fd = p.stderr.fileno()   # unbuffered reads: select sees what is left
    while time.monotonic() - t0 < 60:
        r, _, _ = select.select([fd], [], [], 1)
        if not r:
            if p.poll() is not None:
                break
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        err += chunk
        if b"attached to pid" in err:
            p.early_err = err
            p.loaded = lambda: wait_stderr(p, b"the shim is loaded", 15)
            return p, time.monotonic() - t0, err
    return p, None, err


def wait_stderr(p, what, secs):
    """Read p's stderr (kept in p.early_err for finish) until what."""
    fd = p.stderr.fileno()
    t0 = time.monotonic()
    while what not in p.early_err and time.monotonic() - t0 < secs:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            p.early_err += chunk
    return what in p.early_err


def finish(p, sig=signal.SIGINT):
    if sig:
        p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=60)
        err = (getattr(p, "early_err", b"") or b"") + err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    return p.returncode, err.decode(errors="replace")


def report(trace):
    r = h.pyprof("report", trace, "--format", "json")
    if r.rc != 0:
        return None, "report rc %s: %s" % (r.rc, h.tail(r.err))
    try:
        return json.loads(r.stdout), ""
    except ValueError as e:
        return None, "not JSON: %s" % e


def one(label, py):
    t = "%s attach" % label
    tg = Target([py, h.workload_path(W)])
    if not h.check(tg.ready, t + ": target started", "no 'ready'"):
        return tg.close()
    try:
        window(t, tg)
        live(t, tg)
        killed(t, tg)
    finally:
        tg.close()


def window(t, tg):
    premapped = tg.ask("premap %d" % TOUCH_MIB)
    base = state(tg.pid)
    trace = h.tmpfile("attach-%d.pp" % tg.pid)
    p, secs, err = start_attach(tg.pid, trace)
    if not h.check(secs is not None and secs <= ATTACH_S,
                   "%s: attached within %.0f s" % (t, ATTACH_S),
                   "after %s s; stderr %s" % (secs, h.tail(err.decode(errors="replace")))):
        finish(p)
        return
    ok, why = same_state(base, state(tg.pid))
    h.check(ok, t + ": while attached the target holds nothing of pyprof's", why)
    p2 = h.pyprof("record", "-o", h.tmpfile("twice.pp"), "--pid", str(tg.pid),
                  "--duration", "1", timeout=60)
    lines = [l for l in p2.err.splitlines() if l.strip()]
    h.check(p2.rc == 1 and len(lines) == 1 and "already attached" in lines[0],
            t + ": a second pyprof is refused with one line",
            "rc %s stderr %r" % (p2.rc, p2.err))
    started = tg.ask("thread")
    gc_truth = tg.ask("gc 23")
    lock_truth = tg.ask("lock")
    grown = tg.ask("grow %d" % GROW_MIB)
    touched = tg.ask("touch")
    untouched = tg.ask("untouch")
    renamed = tg.ask("rename pp-renamed")
    rc, err2 = finish(p)
    h.check(rc == 0, t + ": SIGINT detaches with exit 0", "rc %s: %s" % (rc, h.tail(err2)))
    time.sleep(0.2)
    ok, why = same_state(base, state(tg.pid))
    h.check(ok, t + ": after detach maps, fds and threads are as before", why)
    h.check(tg.ask("ping") == "pong", t + ": target serves after detach", "no pong")
    rep, why = report(trace)
    if not h.check(rep is not None, t + ": reported", why):
        return
    att = rep.get("attach") or {}
    h.check(att.get("mode") == "ebpf" and "injection" in att.get("cannot_see", ""),
            t + ": report says eBPF-only attach and what it cannot see", "attach %r" % att)
    # a thread made while attached, renamed by itself seconds later: the
    # probes give its name (no /proc read per thread), the last one
    names = {th.get("tid"): th.get("name")
             for th in (rep.get("gil") or {}).get("threads") or []}
    tid = int(started.split()[1]) if (started or "").startswith("started ") else None
    h.check(renamed == "renamed pp-renamed %s" % tid and names.get(tid) == "pp-renamed",
            t + ": a thread's own rename is its name in the report",
            "target %r %r; report names %r" % (started, renamed, names.get(tid)))
    # GC: collections per generation equal gc.callbacks' count
    f = (gc_truth or "").split()
    if h.check(len(f) == 4 and f[0] == "gc", t + ": target counted its collections",
               "got %r" % gc_truth):
        want = [int(x) for x in f[1:]]
        gens = {g.get("generation"): g.get("collections")
                for g in (rep.get("gc") or {}).get("generations") or []}
        got = [gens.get(g, 0) for g in (0, 1, 2)]
        h.check(got == want and want[0] > 23,
                "%s: GC collections per generation = gc.callbacks (%s)" % (t, want),
                "report %s (gc %s)" % (got, rep.get("gc")))
    # the planted contention
    f = (lock_truth or "").split()
    if h.check(len(f) == 5 and f[0] == "lock", t + ": target timed its lock waits",
               "got %r" % lock_truth):
        file, line, wait, n = f[1], int(f[2]), float(f[3]), int(f[4])
        locks = rep.get("locks") or []
        top = locks[0] if locks else {}
        site = top.get("site") or {}
        h.check(site.get("file") == file and site.get("line") == line,
                "%s: top contended lock at the planted line %d" % (t, line),
                "top %s" % top)
        got = top.get("wait_s") or 0.0
        # every blocking acquire is at least one futex wait; 3.13's PyMutex
        # may park more than once in one acquire (Python/lock.c)
        h.check((top.get("contentions") or 0) >= n and abs(got - wait) <= 0.10 * wait,
                "%s: >= %d contentions, wait %.3f s within 10%%" % (t, n, wait),
                "got %s contentions, %.4f s" % (top.get("contentions"), got))
    k = (rep.get("heap") or {}).get("kernel") or {}
    h.check(grown == "grown %d" % GROW_MIB and k.get("source") == "ebpf" and
            k.get("mapped_bytes", 0) >= GROW_MIB * h.MIB,
            "%s: %d MiB grown after attach is in heap.kernel" % (t, GROW_MIB),
            "target %r, kernel %r" % (grown, k))
    # each 1 MiB block is its own mapping, charged to its line from BPF
    file, line, func = h.marker_site(W, "GROW")
    s, why = h.one_site(rep, file, line)
    h.check(s is not None and s.get("alloc_count") == GROW_MIB and
            GROW_MIB * h.MIB <= s.get("live_bytes", 0) <= GROW_MIB * (h.MIB + 8192),
            "%s: the %d mappings are charged to %s:%d" % (t, GROW_MIB, W, line),
            why or h.fmt_site(s))
    # pages of memory mapped before attach, made by a first write after it
    file, line, func = h.marker_site(W, "TOUCH")
    s, why = h.one_site(rep, file, line)
    pages = TOUCH_MIB * h.MIB // 4096
    # BPF cannot fault a page in: a fault whose Python frames are not
    # resident (rare: the loop's own frame is hot) is charged to no line
    n = (s or {}).get("alloc_count", 0)
    h.check(premapped == "premapped %d" % TOUCH_MIB and touched == "touched %d" % pages and
            s is not None and 0.99 * pages <= n <= pages,
            "%s: %d first-touched pages are charged to %s:%d (99%%)" % (t, pages, W, line),
            why or "target %r %r, site %s" % (premapped, touched, h.fmt_site(s)))
    # its second half given back (madvise): those of its pages that were
    # charged go free, the first half's stay
    half = pages // 2
    live = (s or {}).get("live_bytes", -1)
    h.check(untouched == "untouched %d" % half and
            (n - half) * 4096 <= live <= half * 4096,
            "%s: pages given back by madvise are freed at %s:%d" % (t, W, line),
            "target %r, live %d of %d charged pages, want %d..%d" % (
                untouched, live, n, (n - half) * 4096, half * 4096))


def live(t, tg):
    """The viewer's batch frames: figures within a second of attaching."""
    tg.ask("spin 30")
    r = h.pyprof("--pid", str(tg.pid), "--no-inject", "-b", "-n", "1", "-d", "1",
                 timeout=60)
    gc_line = [l for l in r.out.splitlines() if l.startswith("GC ")]
    n = int(gc_line[0].split()[1]) if gc_line and gc_line[0].split()[1].isdigit() else 0
    h.check(r.rc == 0 and n > 0 and "since attach" in r.out,
            t + " viewer: GC figures in the first frame, 1 s after attach",
            "rc %s GC line %r; %s" % (r.rc, gc_line, h.tail(r.err)))
    h.check(max(len(l) for l in r.out.splitlines() or [""]) <= 80,
            t + " viewer: frame fits 80 columns", h.tail(r.out))


def killed(t, tg):
    """kill -9 of pyprof while recording."""
    base = state(tg.pid)
    trace = h.tmpfile("killed-%d.pp" % tg.pid)
    p, secs, err = start_attach(tg.pid, trace)
    if not h.check(secs is not None, t + " kill -9: attached", h.tail(err.decode())):
        finish(p)
        return
    tg.ask("gc 3")
    time.sleep(1.2)    # a chunk flushed
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    h.check(tg.ask("ping") == "pong", t + " kill -9: the target keeps serving", "no pong")
    time.sleep(0.3)
    ok, why = same_state(base, state(tg.pid))
    h.check(ok, t + " kill -9: nothing of pyprof's left in the target", why)
    rep, why = report(trace)
    h.check(rep is not None and (rep.get("attach") or {}).get("mode") == "ebpf",
            t + " kill -9: the trace reads up to its last chunk", why)
    p3, secs, err = start_attach(tg.pid, h.tmpfile("again-%d.pp" % tg.pid))
    rc, _ = finish(p3)
    h.check(secs is not None and rc == 0, t + " kill -9: attaching again works (no lock left)",
            "secs %s rc %s %s" % (secs, rc, h.tail(err.decode())))


def repeat(label, py):
    t = "%s attach x%d" % (label, REPEAT)
    tg = Target([py, h.workload_path(W)])
    try:
        if not h.check(tg.ready, t + ": target started", "no 'ready'"):
            return
        base = state(tg.pid)
        bad = []
        for i in range(REPEAT):
            r = h.pyprof("record", "-o", h.tmpfile("rep.pp"), "--pid", str(tg.pid),
                         "--no-inject", "--duration", "0.3", timeout=60)
            ok, why = same_state(base, state(tg.pid))
            if r.rc != 0 or not ok or tg.ask("ping") != "pong":
                bad.append("run %d: rc %s %s %s" % (i, r.rc, why, h.tail(r.err)))
        h.check(not bad, t + ": every detach leaves the target as it was, serving",
                "; ".join(bad[:3]))
    finally:
        tg.close()


def pidns(label, py):
    """A target in its own PID namespace (pid 1 there), attached by our pid."""
    t = "%s attach pid namespace" % label
    tg = Target(["unshare", "--pid", "--fork", "--mount-proc", py, h.workload_path(W)])
    try:
        if not h.check(tg.ready, t + ": target started", "no 'ready'"):
            return
        kids = open("/proc/%d/task/%d/children" % (tg.pid, tg.pid)).read().split()
        if not h.check(len(kids) == 1, t + ": python found", "children %r" % kids):
            return
        pid = int(kids[0])
        trace = h.tmpfile("ns.pp")
        p, secs, err = start_attach(pid, trace)
        if not h.check(secs is not None, t + ": attached", h.tail(err.decode())):
            finish(p)
            return
        truth = tg.ask("gc 5")
        rc, err2 = finish(p)
        rep, why = report(trace)
        want = [int(x) for x in (truth or "gc -1 -1 -1").split()[1:]]
        gens = {g.get("generation"): g.get("collections")
                for g in ((rep or {}).get("gc") or {}).get("generations") or []}
        got = [gens.get(g, 0) for g in (0, 1, 2)]
        h.check(rc == 0 and got == want, t + ": GC counts = gc.callbacks (%s)" % want,
                "rc %s report %s %s" % (rc, got, why or h.tail(err2)))
        h.check(tg.ask("ping") == "pong", t + ": target serves after detach", "no pong")
    finally:
        tg.close()


def refused(t, argv, want, target=None, code=1):
    r = h.run(argv, timeout=60)
    lines = [l for l in r.err.splitlines() if l.strip()]
    # a usage error adds "Try 'pyprof --help'."
    ok = r.rc == code and len(lines) == (1 if code == 1 else 2) and want in lines[0]
    if target is not None:
        st = state(target.pid)
        ok = ok and "error" not in st and not st["stopped"] and target.ask("ping") == "pong"
    h.check(ok, t, "rc %s stderr %r" % (r.rc, r.err))


def refusals(py):
    t = "attach refuses"
    tg = Target([py, h.workload_path(W)])
    sl = subprocess.Popen(["sleep", "60"])
    try:
        pp = str(h.PYPROF)
        dead = subprocess.Popen(["true"])
        dead.wait()
        refused(t + " a nonexistent pid", [pp, "--pid", str(dead.pid), "-b", "-n", "1"],
                "no process with pid")
        refused(t + " a non-Python process", [pp, "--pid", str(sl.pid), "-b", "-n", "1"],
                "not a Python process")
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        refused(t + " nobody without CAP_BPF",
                nobody + [pp, "--pid", str(tg.pid), "-b", "-n", "1"],
                "needs root or CAP_BPF+CAP_PERFMON", tg)
        caps = ["--inh-caps", "+bpf,+perfmon", "--ambient-caps", "+bpf,+perfmon"]
        refused(t + " nobody with CAP_BPF on root's process",
                nobody + caps + [pp, "--pid", str(tg.pid), "-b", "-n", "1"],
                "may not read pid", tg)
        wrapped = Target([pp, "record", "-o", h.tmpfile("wrapped.pp"), "--", py,
                          h.workload_path(W)])
        kids = open("/proc/%d/task/%d/children" % (wrapped.pid, wrapped.pid)).read().split()
        if h.check(wrapped.ready and len(kids) == 1, t + ": a wrapped target runs",
                   "children %r" % kids):
            refused(t + " a process already under pyprof",
                    [pp, "--pid", kids[0], "-b", "-n", "1"], "already runs under pyprof")
        wrapped.close()
        refused(t + " --pid with a command", [pp, "--pid", str(tg.pid), "--", py, "-c", "1"],
                "not both", tg, code=2)
        refused(t + " --no-inject without --pid", [pp, "--no-inject", "--", py, "-c", "1"],
                "for attaching", code=2)
    finally:
        sl.kill()
        sl.wait()
        tg.close()


def viewer_quit(label, py):
    """The interactive viewer in tmux: q detaches, exit 0, target as before."""
    from test_viewer import Pane   # its tmux helpers (own server, cleaned up)
    t = "%s attach viewer q" % label
    tg = Target([py, h.workload_path(W)])
    try:
        if not h.check(tg.ready, t + ": target started", "no 'ready'"):
            return
        tg.ask("spin 20")
        base = state(tg.pid)
        pane = Pane([h.PYPROF, "--pid", tg.pid, "--no-inject"], w=100, h_=30)
        ok, text = pane.wait(lambda x: "since attach" in x and
                             re.search(r"GC [1-9]", x) is not None)
        h.check(ok, t + ": header shows the attach and GC figures", h.tail(text))
        pane.keys("q")
        rc = pane.exit_status()
        h.check(rc == 0, t + ": q detaches with exit 0", "exit %s; %s" % (
            rc, h.tail(pane.text(history=True))))
        pane.kill()
        time.sleep(0.2)
        ok, why = same_state(base, state(tg.pid))
        h.check(ok and tg.ask("ping") == "pong",
                t + ": the target is as before and serving", why)
    finally:
        tg.close()


def main():
    h.require_pyprof()
    found = h.interpreters()
    for label, py in found:
        one(label, py)
    if found:
        label, py = found[0]
        repeat(label, py)
        pidns(label, py)
        viewer_quit(label, py)
        refusals(py)
    h.done()


if __name__ == "__main__":
    sys.exit(main())
