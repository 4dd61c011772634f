"""pyprof --pid with the shim loaded into a process that forks
(tests/workloads/inject_forker.py), per interpreter, --sample 0:

- a child forked by os.fork from the main thread, by os.fork from
  another thread, and by a multiprocessing 'fork' Process, while the
  parent has the shim mapped (the control: without the child's own
  detach the child keeps it), is clean within CLEAN_S of the fork: no
  libpyprof or ring
  in its /proc/self/maps, no descriptor of pyprof's (nothing new but the
  workload's own pipes and multiprocessing's /dev/null), one task; it
  keeps allocating and computing right (0.5 s at least) and exits 0;
- attached while its main thread sleeps (so the pending call that loads
  the shim waits) and another thread forks RACE_N children that run
  Python: the shim loads into the parent only (a child running the
  pending call it inherited is refused and unloads), each child is clean
  and exits 0, no copy of the shim is left in the target's /tmp;
- children that leave at once (os._exit, exec, subprocess with a
  preexec_fn, subprocess by vfork) exit with their own status;
- the parent's recording goes on through all of it: what it allocates
  while each child runs and after each has cleaned up (so after the
  child closed its copy of the connection) is exact in the report, line
  by line (counts and bytes); no child's allocation is in it;
- the detach leaves the parent's maps, fds and tasks as they were.
With --children (CHILDREN_LABELS): a child forked from the target,
which has the shim, gets one of its own once its inherited copy is
gone, and one that exec's Python gets one in its new image: each is
reported with its own sites from its shim, the target with none of
theirs; the target is left as it was.
"""
import json
import sys

import harness as h
from test_attach import Target, finish, same_state, start_attach, state, report
from test_inject import copies, shim_mapped

W = "inject_forker.py"
MODES = ("os", "thread", "mp")
AFTER_N = 400
RACE_N = 20
# --children: a static and a libpython build, a chroot one, PEP 768
CHILDREN_LABELS = ("py3.11-debian", "py3.12", "py3.13-trixie", "py3.14-sid")
CHILD_S = 3
CLEAN_S = 5.0       # typical: 10-100 ms; generous for a loaded machine


def extra(c, own):
    """What a child's report holds that its parent does not (but pipes
    and /dev/null), or more than one task: "" if nothing."""
    if not c or not c.get("maps"):
        return "no report: %r" % c
    maps = sorted(set(c["maps"]) - set(own["maps"]) - {"[uprobes]"})
    fds = sorted(f for f in set(c.get("fds") or []) - set(own["fds"])
                 if not f.startswith("pipe:") and f != "/dev/null")
    tasks = c.get("tasks") or []
    if maps or fds or tasks != [str(c.get("pid"))]:
        return "pid %s: new maps %s, fds %s, tasks %s" % (c.get("pid"), maps[:4], fds[:4],
                                                          tasks)
    return ""


def child_checks(t, own, ans):
    """own: what the parent holds after the detach, in its own view (the
    child's paths are a chroot's own): the child may hold no more (but
    the workload's pipes and multiprocessing's /dev/null)."""
    c = ans.get("child") or {}
    h.check(ans.get("had_shim") is True,
            t + ": the child is forked with the shim mapped", "had_shim %s" %
            ans.get("had_shim"))
    after = c.get("clean_after")
    print("info %s: the child was clean %s s after the fork" % (t, after))
    h.check(after is not None and after <= CLEAN_S,
            t + ": the child unloads it within %.0f s of the fork" % CLEAN_S,
            "clean_after %s" % after)
    why = extra(c, own)
    h.check(not why, t + ": then the child holds nothing of pyprof's (maps, fds, one task)",
            why)
    h.check(c.get("bad") == 0 and ans.get("rc") == 0,
            t + ": the child computed right and exited 0",
            "bad %s rc %s" % (c.get("bad"), ans.get("rc")))


def one(label, py):
    t = "%s inject fork" % label
    tg = Target([py, h.workload_path(W)])
    try:
        if not h.check(tg.ready, t + ": target started", "no 'ready'"):
            return
        base = state(tg.pid)
        had = copies(label)
        trace = h.tmpfile("fork-%d.pp" % tg.pid)
        # attached while the main thread sleeps and another thread forks
        started = tg.ask("race %d" % RACE_N)
        p, secs, err = start_attach(tg.pid, trace, ("--sample", "0"), inject=True)
        if not h.check(started == "started" and secs is not None and p.loaded(),
                       t + ": the shim loads (children forked meanwhile)",
                       h.tail((getattr(p, "early_err", None) or err).decode())):
            finish(p)
            return
        try:
            raced = json.loads(tg.ask("racewait", timeout=60) or "")
        except ValueError:
            raced = {}
        during, sizes, answers = 0, set(), []
        for mode in MODES:
            tm = "%s (%s)" % (t, mode)
            raw = tg.ask("fork %s %d" % (mode, AFTER_N), timeout=60) or ""
            try:
                ans = json.loads(raw)
            except ValueError:
                h.check(False, tm + ": the target answered", repr(raw[:200]))
                continue
            during += ans.get("during", 0)
            sizes.add((ans.get("during_size"), ans.get("after_size")))
            answers.append((tm, ans))
        quick = tg.ask("quick", timeout=60)
        h.check(quick == "quick 7 0 0 5", t + ": children that _exit or exec at once "
                "(os.fork, subprocess) end with their own status", repr(quick))
        pong = tg.ask("ping")
        rc, err2 = finish(p)
        after = state(tg.pid)
        ok, why = same_state(base, after)
        h.check(rc == 0 and ok and not shim_mapped(tg.pid) and pong == "pong",
                t + ": detach leaves the parent's maps, fds, tasks as they were",
                "rc %s %s %s" % (rc, why, h.tail(err2)))
        h.check(tg.ask("check") == "ok 0", t + ": the parent computed right", "")
        try:
            own = json.loads(tg.ask("held") or "")
        except ValueError:
            own = {"maps": [], "fds": []}
        for tm, ans in answers:
            child_checks(tm, own, ans)
        kids = raced.get("children") or []
        bad = [extra(c, own) for c in kids if extra(c, own)]
        h.check(len(kids) == RACE_N and not bad and
                all(c and c.get("bad") == 0 for c in kids) and
                raced.get("statuses") == [0] * RACE_N,
                t + ": children forked before the shim loaded (its pending call "
                "queued) hold nothing of pyprof's, computed right, exited 0",
                "%d reports, statuses %s, %s" % (len(kids), raced.get("statuses"), bad[:2]))
        h.check(not copies(label, had), t + ": no copy of the shim left in its /tmp",
                str(copies(label, had)))
        rep, why = report(trace)
        if not h.check(rep is not None, t + ": report", why):
            return
        # exact, but for what the report says the shim's ring dropped
        ev = rep.get("events") or {}
        lost = (ev.get("dropped_by_source") or {}).get("shim", 0)
        dsize, asize = sizes.pop() if len(sizes) == 1 else (0, 0)
        for marker, n, size in (("PARENT-DURING", during, dsize),
                                ("PARENT-AFTER", AFTER_N * len(MODES), asize)):
            f, ln, _ = h.marker_site(W, marker)
            s, why = h.one_site(rep, f, ln)
            c = (s or {}).get("live_count", -1)
            h.check(n > 0 and n - lost <= c <= n and s.get("live_bytes") == c * size,
                    t + ": the parent's %s allocations are exact (%d)" % (marker, n),
                    "%s; lost %s" % (why or h.fmt_site(s), lost))
        theirs = []
        for marker in ("CHILD-KEEP", "CHILD-RACE"):
            f, ln, _ = h.marker_site(W, marker)
            theirs += h.sites_at(rep.get("sites"), f, ln)
        h.check(not theirs, t + ": nothing of the children's in the parent's report",
                str([h.fmt_site(s) for s in theirs]))
    finally:
        tg.close()


def site_of(rep, marker):
    f, ln, _ = h.marker_site(W, marker)
    return h.sites_at((rep or {}).get("sites"), f, ln)


def children(label, py):
    """--children: a child forked from the target (which has the shim)
    gets a shim of its own once its inherited copy is gone; one that
    exec's Python gets one in its new image; each is reported with its
    own sites, the target with none of theirs."""
    t = "%s inject --children" % label
    tg = Target([py, h.workload_path(W)])
    try:
        if not h.check(tg.ready, t + ": target started", "no 'ready'"):
            return
        base = state(tg.pid)
        trace = h.tmpfile("forkc-%d.pp" % tg.pid)
        p, secs, err = start_attach(tg.pid, trace, ("--children", "--sample", "0"),
                                    inject=True)
        if not h.check(secs is not None and p.loaded(), t + ": the shim loads",
                       h.tail((getattr(p, "early_err", None) or err).decode())):
            finish(p)
            return
        try:
            ans = json.loads(tg.ask("fork os %d %s" % (AFTER_N, CHILD_S), timeout=60) or "")
        except ValueError:
            ans = {}
        spawned = tg.ask("spawn %s" % CHILD_S, timeout=60)
        rc, err2 = finish(p)
        ok, why = same_state(base, state(tg.pid))
        h.check(rc == 0 and ok and not shim_mapped(tg.pid) and spawned == "spawned 0" and
                ans.get("rc") == 0, t + ": children end well, the detach leaves the "
                "target as it was", "rc %s %s spawned %r child rc %s %s" %
                (rc, why, spawned, ans.get("rc"), h.tail(err2)))
        merged, why = report(trace)
        pids = [x.get("pid") for x in (merged or {}).get("processes") or []]
        child = (ans.get("child") or {}).get("pid")
        kids = [x for x in pids if x not in (tg.pid, child)]
        if not h.check(len(pids) == 3 and child in pids and len(kids) == 1,
                       t + ": the target and its 2 children are in the trace",
                       "%s; processes %s, child %s" % (why, pids, child)):
            return
        reps = {}
        for pid in pids:
            r = h.pyprof("report", trace, "--format", "json", "--proc", str(pid))
            try:
                reps[pid] = json.loads(r.stdout) if r.rc == 0 else None
            except ValueError:
                reps[pid] = None
        root = reps.get(tg.pid)
        s = site_of(root, "PARENT-AFTER")
        h.check(not site_of(root, "CHILD-KEEP") and not site_of(root, "KID-KEEP") and
                len(s) == 1 and s[0].get("live_count") == AFTER_N,
                t + ": the target's report holds its own allocations, none of its "
                "children's", "%s" % [h.fmt_site(x) for x in s])
        for pid, marker, what in ((child, "CHILD-KEEP", "forked (inherited copy gone)"),
                                  (kids[0], "KID-KEEP", "exec'd")):
            r = reps.get(pid) or {}
            s = site_of(r, marker)
            h.check((r.get("attach") or {}).get("mode") == "shim" and len(s) == 1 and
                    s[0].get("alloc_count", 0) > 0,
                    t + ": the %s child has a shim of its own: its sites" % what,
                    "attach %s, sites %s" % (r.get("attach"), [h.fmt_site(x) for x in s]))
    finally:
        tg.close()


def main():
    h.require_pyprof()
    for label, py in h.interpreters():
        one(label, py)
        if label in CHILDREN_LABELS:
            children(label, py)
    h.done()


if __name__ == "__main__":
    sys.exit(main())
